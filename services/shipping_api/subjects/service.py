"""Finding, exporting, erasing, restricting and rectifying a data subject's data in shipping,
driven by the PII annotations of the tables (decision 0004).

A subject is an account (its shipments, their events, parcels, support notes, staff reads and
stored idempotent responses, its webhook endpoints, delivery log and notices not yet handed to
identity, its request log) and/or a recipient, found through the keyed blind index of e-mail and
phone. Every answer is stored under the privacy request's id, so a retry gets the same answer and
changes nothing more.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator
from sqlalchemy import ColumnElement, Table, delete, exists, false, or_, select, true, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker

from libs.common.db import among, stream_batches, uuid7
from libs.common.errors import FieldError, ValidationFailed
from libs.common.idempotency import forget_keys
from libs.common.pii import erasure_values, export_lines, in_scope, retained_fields
from libs.common.validation import (
    normalise_country,
    normalise_email,
    normalise_phone,
    normalise_postcode,
)
from services.shipping_api.models import (
    AccountNotice,
    IdempotencyKey,
    Parcel,
    RequestLog,
    Shipment,
    ShipmentEvent,
    SubjectRequestAnswer,
    SubjectRestriction,
    SupportAccess,
    SupportNote,
    WebhookDelivery,
    WebhookEndpoint,
)
from services.shipping_api.recipients.blind_index import BlindIndex
from services.shipping_api.recipients.erasure import erase_shipments
from services.shipping_api.shipments.service import postcode_area
from services.shipping_api.subjects.schemas import (
    EraseAnswer,
    KeptField,
    RectifyAnswer,
    RestrictAnswer,
    RestrictionBasis,
    Subject,
)
from services.shipping_api.webhooks.outbox import shipment_event_data

BATCH = 500

CATEGORY: dict[str, str] = {
    "shipments": "shipments",
    "parcels": "shipments",
    "shipment_events": "shipment_events",
    "support_notes": "support_contact",
    "support_access_log": "support_access",
    # A stored first response is a copy of the shipment as the API answered it.
    "idempotency_keys": "shipments",
    "webhook_endpoints": "webhooks",
    "webhook_deliveries": "webhooks",
    # A notice tells the account holder about one of its webhook endpoints.
    "account_notices": "webhooks",
    "request_log": "request_log",
    "subject_restrictions": "restrictions",
}


def _table(model: Any) -> Table:
    table: Table = model.__table__
    return table


class SubjectKeys:
    """The subject as this service can match it."""

    def __init__(self, subject: Subject, blind_index: BlindIndex) -> None:
        self.account_id = subject.account_id
        try:
            self.email_index = blind_index.email(subject.email)
        except ValueError as exc:
            raise ValidationFailed.for_field("subject.email", str(exc)) from exc
        try:
            self.phone_index = blind_index.phone(subject.phone)
        except ValueError as exc:
            raise ValidationFailed.for_field("subject.phone", str(exc)) from exc

    def as_recipient(self) -> ColumnElement[bool]:
        conditions: list[ColumnElement[bool]] = []
        if self.email_index:
            conditions.append(Shipment.recipient_email_index == self.email_index)
        if self.phone_index:
            conditions.append(Shipment.recipient_phone_index == self.phone_index)
        return or_(*conditions) if conditions else false()

    def shipments(self) -> ColumnElement[bool]:
        """The account's shipments and the shipments addressed to the recipient."""
        if self.account_id is None:
            return self.as_recipient()
        return or_(Shipment.account_id == self.account_id, self.as_recipient())

    def restriction_rows(self) -> list[tuple[str, str]]:
        rows = []
        if self.email_index:
            rows.append(("email", self.email_index))
        if self.phone_index:
            rows.append(("phone", self.phone_index))
        if self.account_id is not None:
            rows.append(("account", str(self.account_id)))
        return rows


# --------------------------------------------------------------------------------------------
# Stored answers
# --------------------------------------------------------------------------------------------


async def stored_answer(
    session: AsyncSession, request_id: str, action: str
) -> dict[str, Any] | None:
    answer = await session.scalar(
        select(SubjectRequestAnswer.answer).where(
            SubjectRequestAnswer.request_id == request_id, SubjectRequestAnswer.action == action
        )
    )
    return dict(answer) if answer is not None else None


async def store_answer(
    session: AsyncSession, request_id: str, action: str, answer: BaseModel, now: datetime
) -> dict[str, Any]:
    data = answer.model_dump(mode="json")
    try:
        async with session.begin_nested():
            session.add(
                SubjectRequestAnswer(
                    id=uuid7(), request_id=request_id, action=action, answer=data, created_at=now
                )
            )
    except IntegrityError:
        # The same call ran concurrently and answered first: that answer stands.
        earlier = await stored_answer(session, request_id, action)
        if earlier is not None:
            return earlier
        raise
    return data


# --------------------------------------------------------------------------------------------
# Export
# --------------------------------------------------------------------------------------------


SHIPMENT_BATCH = 500
"""Shipments per batch; each batch's parcels, events and support rows follow it in the export."""
STREAM_BATCH = 2000


def _category(table: Table) -> str:
    return CATEGORY.get(table.name, table.name)


def _stream(
    connection: AsyncConnection, model: Any, condition: ColumnElement[bool], size: int
) -> AsyncIterator[Sequence[Any]]:
    """Rows matching ``condition`` in id order, ``size`` at a time (``stream_batches``)."""
    statement = select(_table(model)).where(condition).order_by(model.id)
    return stream_batches(connection, statement, size)


async def export_subject(
    sessionmaker: async_sessionmaker[AsyncSession],
    keys: SubjectKeys,
    *,
    categories: frozenset[str] | None = None,
) -> AsyncIterator[bytes]:
    """NDJSON, streamed in blocks of lines: every row held about the subject, secrets withheld;
    with ``categories``, only the data of those categories (``libs.common.pii.in_scope``).
    One connection throughout: the cursors and the per-batch lookups share it."""
    shipments = _table(Shipment)
    # Each table with the column that names the shipment a row hangs off, and which of those
    # rows the batch holds.
    per_batch: list[tuple[Any, Any, ColumnElement[bool]]] = [
        (model, model.shipment_id, true())
        for model in (Parcel, ShipmentEvent, SupportNote, SupportAccess)
        if in_scope(_table(model), categories)
    ]
    if in_scope(_table(IdempotencyKey), categories):
        # An account's own stored answers all follow with the account; here the others that
        # copy one of the shipments (another account's, to this recipient; a staff note's).
        others = (
            IdempotencyKey.scope != str(keys.account_id) if keys.account_id is not None else true()
        )
        per_batch.append((IdempotencyKey, IdempotencyKey.resource_id, others))
    async with sessionmaker() as session:
        connection = await session.connection()
        async for batch in _stream(connection, Shipment, keys.shipments(), SHIPMENT_BATCH):
            yield export_lines(_category(shipments), shipments, batch, categories=categories)
            ids = [row.id for row in batch]
            for model, link, condition in per_batch:
                table = _table(model)
                rows = (
                    await connection.execute(
                        select(table).where(among(session, link, ids), condition).order_by(model.id)
                    )
                ).all()
                yield export_lines(_category(table), table, rows, categories=categories)
        if keys.account_id is not None:
            account = keys.account_id
            # Staff reads of the account's shipment list hang off no shipment; its stored
            # answers (0202) are all here, whatever they created.
            owned: tuple[tuple[Any, ColumnElement[bool]], ...] = (
                (
                    SupportAccess,
                    (SupportAccess.account_id == account) & SupportAccess.shipment_id.is_(None),
                ),
                (IdempotencyKey, IdempotencyKey.scope == str(account)),
                (WebhookEndpoint, WebhookEndpoint.account_id == account),
                (WebhookDelivery, WebhookDelivery.account_id == account),
                (AccountNotice, AccountNotice.account_id == account),
                (RequestLog, RequestLog.account_id == account),
            )
            for owner, condition in owned:
                table = _table(owner)
                if not in_scope(table, categories):
                    continue
                async for rows in _stream(connection, owner, condition, STREAM_BATCH):
                    yield export_lines(_category(table), table, rows, categories=categories)
        restrictions = keys.restriction_rows()
        table = _table(SubjectRestriction)
        if restrictions and in_scope(table, categories):
            condition = or_(
                *(
                    (SubjectRestriction.kind == kind) & (SubjectRestriction.value == value)
                    for kind, value in restrictions
                )
            )
            async for rows in _stream(connection, SubjectRestriction, condition, STREAM_BATCH):
                yield export_lines(_category(table), table, rows, categories=categories)


# --------------------------------------------------------------------------------------------
# Erasure
# --------------------------------------------------------------------------------------------


def _add(totals: dict[str, int], counts: dict[str, int]) -> None:
    for table, count in counts.items():
        totals[table] = totals.get(table, 0) + count


def _rowcount(result: object) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


async def erase_subject(session: AsyncSession, keys: SubjectKeys, *, now: datetime) -> EraseAnswer:
    erased: dict[str, int] = {}
    while True:
        ids = (
            await session.scalars(
                select(Shipment.id)
                .where(keys.shipments(), Shipment.recipient_erased_at.is_(None))
                .limit(BATCH)
            )
        ).all()
        if not ids:
            break
        _add(erased, await erase_shipments(session, ids, now=now))
    touched = [_table(Shipment), _table(ShipmentEvent), _table(SupportNote), _table(SupportAccess)]
    if keys.account_id is not None:
        account = keys.account_id
        for model, extra in (
            (WebhookEndpoint, {"is_active": False, "updated_at": now}),
            (WebhookDelivery, {}),
            (SupportNote, {}),
            (SupportAccess, {}),
        ):
            table = _table(model)
            result = await session.execute(
                update(table)
                .where(table.c.account_id == account)
                .values(**(erasure_values(table) | extra))
                .execution_options(synchronize_session=False)
            )
            _add(erased, {str(table.name): _rowcount(result)})
            touched.append(table)
        # Request-log entries are nothing but personal data: they go entirely; so do notices
        # not yet handed to identity (nobody is left to tell).
        for owned_rows in (RequestLog, AccountNotice):
            result = await session.execute(
                delete(owned_rows).where(owned_rows.account_id == account)
            )
            _add(erased, {str(_table(owned_rows).name): _rowcount(result)})
        _add(
            erased,
            {"idempotency_keys": await forget_keys(session, IdempotencyKey, scope=str(account))},
        )
    touched.append(_table(SubjectRestriction))
    kept: dict[tuple[str, str], KeptField] = {}
    for table in touched:
        for field in retained_fields(table):
            kept[(field.table, field.column)] = KeptField(**field.as_dict())
    erased = {table: count for table, count in erased.items() if count}
    return EraseAnswer(erased=erased, kept=list(kept.values()))


# --------------------------------------------------------------------------------------------
# Restriction and objection
# --------------------------------------------------------------------------------------------


async def restrict_subject(
    session: AsyncSession,
    keys: SubjectKeys,
    *,
    restricted: bool,
    basis: RestrictionBasis,
    request_id: str,
    now: datetime,
) -> RestrictAnswer:
    changed = 0
    for kind, value in keys.restriction_rows():
        match = (
            (SubjectRestriction.kind == kind)
            & (SubjectRestriction.value == value)
            & (SubjectRestriction.basis == basis.value)
        )
        present = await session.scalar(select(SubjectRestriction.id).where(match))
        if restricted and present is None:
            session.add(
                SubjectRestriction(
                    id=uuid7(),
                    kind=kind,
                    value=value,
                    basis=basis.value,
                    request_id=request_id,
                    created_at=now,
                )
            )
            changed += 1
        elif not restricted and present is not None:
            # Lifting only undoes the same basis: an objection is not lifted by ending a
            # restriction.
            await session.execute(
                delete(SubjectRestriction).where(SubjectRestriction.id == present)
            )
            changed += 1
    await session.flush()
    shipments = await _refresh_flags(session, keys)
    restricted_counts = {"shipments": shipments, "subject_restrictions": changed}
    if restricted:
        deliveries = await _restrict_webhook_payloads(session, keys)
        if deliveries:
            restricted_counts["webhook_deliveries"] = deliveries
    return RestrictAnswer(restricted=restricted_counts)


def _restricted_payload(payload: Any) -> Any:
    """A shipment event's webhook body in the restricted form (decision 0206); anything else
    as it is."""
    data = payload.get("data") if isinstance(payload, dict) else None
    shipment = data.get("shipment") if isinstance(data, dict) else None
    event = data.get("event") if isinstance(data, dict) else None
    if not isinstance(shipment, dict) or not isinstance(event, dict):
        return payload
    restricted = shipment_event_data(
        shipment_id=uuid.UUID(shipment["id"]),
        tracking_code=shipment["tracking_code"],
        reference=None,
        carrier=shipment["carrier"],
        service=shipment["service"],
        mode=shipment["mode"],
        status=event["status"],
        occurred_at=datetime.fromisoformat(event["occurred_at"]),
        city=None,
        description=event["description"],
        is_restricted=True,
    )
    return {**payload, "data": restricted}


async def _restrict_webhook_payloads(session: AsyncSession, keys: SubjectKeys) -> int:
    """Rewrite the stored webhook bodies of the subject's restricted shipments to the restricted
    form, in the restriction's transaction. A retry, and a redelivery of one already sent, send
    the stored body again: queued before the restriction, it would still carry the reference,
    the recipient's city and the carrier's text (AVG art. 18(2): after a restriction, storage
    only)."""
    rows = (
        await session.execute(
            select(WebhookDelivery.id, WebhookDelivery.payload)
            .join(Shipment, Shipment.id == WebhookDelivery.shipment_id)
            .where(keys.shipments(), Shipment.is_restricted.is_(True))
        )
    ).all()
    changed = 0
    for delivery_id, payload in rows:
        restricted = _restricted_payload(payload)
        if restricted == payload:
            continue
        await session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id == delivery_id)
            .values(payload=restricted)
            .execution_options(synchronize_session=False)
        )
        changed += 1
    return changed


async def _refresh_flags(session: AsyncSession, keys: SubjectKeys) -> int:
    """Recompute ``is_restricted`` of the subject's shipments from every restriction left."""
    restricted_accounts = [
        uuid.UUID(value)
        for value in (
            await session.scalars(
                select(SubjectRestriction.value).where(SubjectRestriction.kind == "account")
            )
        ).all()
    ]
    by_contact = exists().where(
        or_(
            (SubjectRestriction.kind == "email")
            & (SubjectRestriction.value == Shipment.recipient_email_index),
            (SubjectRestriction.kind == "phone")
            & (SubjectRestriction.value == Shipment.recipient_phone_index),
        )
    )
    flag = (
        or_(by_contact, Shipment.account_id.in_(restricted_accounts))
        if restricted_accounts
        else by_contact
    )
    result = await session.execute(
        update(Shipment)
        .where(keys.shipments())
        .values(is_restricted=flag)
        .execution_options(synchronize_session=False)
    )
    return _rowcount(result)


# --------------------------------------------------------------------------------------------
# Rectification
# --------------------------------------------------------------------------------------------


class RecipientChanges(BaseModel):
    """Corrections to a recipient's data, validated like a new shipment's."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str | None = None
    contact_person: str | None = None
    street: str | None = None
    house_number: str | None = None
    postcode: str | None = None
    city: str | None = None
    country: str | None = None
    email: str | None = None
    phone: str | None = None

    _email = field_validator("email")(lambda v: normalise_email(v) if v else v)
    _phone = field_validator("phone")(lambda v: normalise_phone(v) if v else v)
    _country = field_validator("country")(lambda v: normalise_country(v) if v else v)

    @field_validator("name", "street", "city", "house_number")
    @classmethod
    def _required(cls, value: str | None) -> str | None:
        if value is not None and not value:
            raise ValueError("may not be empty")
        if value is not None and len(value) > 200:
            raise ValueError("at most 200 characters")
        return value


def _changes(raw: dict[str, Any]) -> RecipientChanges:
    try:
        return RecipientChanges.model_validate(raw)
    except ValidationError as exc:
        errors = [
            FieldError(
                field="changes." + ".".join(str(part) for part in error["loc"]),
                location="body",
                message=str(error["msg"]),
                type=str(error["type"]),
            )
            for error in exc.errors(include_url=False)
        ]
        raise ValidationFailed(
            "; ".join(f"{e.field}: {e.message}" for e in errors), errors=errors
        ) from exc


async def rectify_subject(
    session: AsyncSession,
    keys: SubjectKeys,
    raw_changes: dict[str, Any],
    *,
    blind_index: BlindIndex,
    now: datetime,
) -> RectifyAnswer:
    """Account holders' own data lives in identity; here only a recipient's is corrected."""
    changes = _changes(raw_changes)
    given = changes.model_dump(exclude_unset=True)
    condition = (keys.as_recipient()) & Shipment.recipient_erased_at.is_(None)
    values: dict[str, Any] = {f"recipient_{name}": value for name, value in given.items()}
    if "postcode" in given:
        country = changes.country
        if country is None:
            countries = (
                await session.scalars(select(Shipment.country_code).where(condition).distinct())
            ).all()
            if len(countries) > 1:
                raise ValidationFailed.for_field(
                    "changes.country", "give the country with the postcode"
                )
            country = countries[0] if countries else "NL"
        try:
            postcode = normalise_postcode(str(given["postcode"]), country)
        except ValueError as exc:
            raise ValidationFailed.for_field("changes.postcode", str(exc)) from exc
        values["recipient_postcode"] = postcode
        values["postcode_area"] = postcode_area(postcode)
    if "country" in given and changes.country:
        values["country_code"] = changes.country
    if "email" in given:
        values["recipient_email_index"] = blind_index.email(changes.email)
    if "phone" in given:
        values["recipient_phone_index"] = blind_index.phone(changes.phone)
    values["updated_at"] = now
    result = await session.execute(
        update(Shipment)
        .where(condition)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return RectifyAnswer(rectified={"shipments": _rowcount(result)}, fields=sorted(given))


async def matched_shipment_ids(session: AsyncSession, keys: SubjectKeys) -> Sequence[uuid.UUID]:
    return (await session.scalars(select(Shipment.id).where(keys.shipments()))).all()
