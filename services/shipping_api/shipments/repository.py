"""Queries over shipments, their parcels and their events."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    ColumnElement,
    RowMapping,
    Select,
    String,
    Uuid,
    bindparam,
    case,
    cast,
    func,
    insert,
    literal,
    literal_column,
    or_,
    select,
    type_coerce,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.db import UTCDateTime
from services.shipping_api.models import (
    Parcel,
    Shipment,
    ShipmentEvent,
    SubjectRestriction,
    WebhookDelivery,
    WebhookEndpoint,
)
from services.shipping_api.shipments.document import PARCEL_DOCUMENT_FIELDS
from services.shipping_api.shipments.schemas import ShipmentFilters
from services.shipping_api.vocabulary import ShipmentMode
from services.shipping_api.webhooks.outbox import DeliveryState


async def get(session: AsyncSession, shipment_id: uuid.UUID) -> Shipment | None:
    return await session.get(Shipment, shipment_id)


async def get_for_account(
    session: AsyncSession,
    shipment_id: uuid.UUID,
    account_id: uuid.UUID | None,
    mode: ShipmentMode | None = None,
    *,
    for_update: bool = False,
) -> Shipment | None:
    """``account_id`` None: any account's (staff, audited by the caller); ``mode`` None: either
    mode's (0205: an API key passes its own). ``for_update``: the row locked until the request's
    transaction ends, and read as it stands once locked."""
    statement = select(Shipment).where(Shipment.id == shipment_id)
    if account_id is not None:
        statement = statement.where(Shipment.account_id == account_id)
    if mode is not None:
        statement = statement.where(Shipment.mode == mode.value)
    if for_update:
        statement = statement.with_for_update().execution_options(populate_existing=True)
    return await session.scalar(statement)


_WITH_PARCELS = (
    select(Shipment, Parcel)
    .join(Parcel, Parcel.shipment_id == Shipment.id)
    .where(Shipment.id == bindparam("shipment_id"))
    .order_by(Parcel.sequence)
)
# Built once: this read runs on every GET of a shipment, and composing the expression per
# request cost more than the query's own round trip.
_WITH_PARCELS_OF_ACCOUNT = _WITH_PARCELS.where(Shipment.account_id == bindparam("account_id"))
_WITH_PARCELS_OF_ACCOUNT_IN_MODE = _WITH_PARCELS_OF_ACCOUNT.where(
    Shipment.mode == bindparam("mode")
)

# What a shipment's document (``GET /v1/shipments/{id}``) is made of: one row per parcel,
# plain columns instead of ORM objects, so it can also be read without the ORM
# (``shipments.fastpath``).
_DOCUMENT = (
    select(
        Shipment.id,
        Shipment.account_id,
        Shipment.reference,
        Shipment.carrier,
        Shipment.service,
        Shipment.status,
        Shipment.tracking_code,
        Shipment.mode,
        Shipment.recipient_name,
        Shipment.recipient_contact_person,
        Shipment.recipient_street,
        Shipment.recipient_house_number,
        Shipment.recipient_postcode,
        Shipment.recipient_city,
        Shipment.recipient_country,
        Shipment.recipient_email,
        Shipment.recipient_phone,
        Shipment.recipient_erased_at,
        Shipment.parcel_count,
        Shipment.price_cents,
        Shipment.currency,
        Shipment.created_at,
        Shipment.updated_at,
        Shipment.status_changed_at,
        Parcel.sequence,
        Parcel.weight_grams,
        Parcel.length_cm,
        Parcel.width_cm,
        Parcel.height_cm,
    )
    .join(Parcel, Parcel.shipment_id == Shipment.id)
    .where(Shipment.id == bindparam("shipment_id"))
    .order_by(Parcel.sequence)
)
DOCUMENT_OF_ACCOUNT = _DOCUMENT.where(Shipment.account_id == bindparam("account_id"))
"""The document as the account holder's own login reads it: either mode's shipment."""
DOCUMENT_OF_ACCOUNT_IN_MODE = DOCUMENT_OF_ACCOUNT.where(Shipment.mode == bindparam("mode"))
"""The document as an API key reads it: only a shipment of the key's mode (0205)."""


def _account_parameters(
    shipment_id: uuid.UUID, account_id: uuid.UUID, mode: ShipmentMode | None
) -> dict[str, Any]:
    parameters: dict[str, Any] = {"shipment_id": shipment_id, "account_id": account_id}
    if mode is not None:
        parameters["mode"] = mode.value
    return parameters


async def document_rows(
    session: AsyncSession,
    shipment_id: uuid.UUID,
    account_id: uuid.UUID | None,
    mode: ShipmentMode | None = None,
) -> Sequence[RowMapping]:
    """The rows of a shipment's document, one per parcel (none: no such shipment here);
    ``account_id`` None: any account's (staff, audited by the caller); ``mode`` None: either
    mode's."""
    if account_id is None:
        result = await session.execute(_DOCUMENT, {"shipment_id": shipment_id})
    else:
        statement = DOCUMENT_OF_ACCOUNT if mode is None else DOCUMENT_OF_ACCOUNT_IN_MODE
        result = await session.execute(
            statement, _account_parameters(shipment_id, account_id, mode)
        )
    return result.mappings().all()


async def get_with_parcels(
    session: AsyncSession,
    shipment_id: uuid.UUID,
    account_id: uuid.UUID | None,
    mode: ShipmentMode | None = None,
) -> tuple[Shipment, list[Parcel]] | None:
    """A shipment and its parcels in one round trip (every shipment has at least one);
    ``account_id`` None: any account's (staff, audited by the caller); ``mode`` None: either
    mode's."""
    if account_id is None:
        result = await session.execute(_WITH_PARCELS, {"shipment_id": shipment_id})
    else:
        statement = _WITH_PARCELS_OF_ACCOUNT if mode is None else _WITH_PARCELS_OF_ACCOUNT_IN_MODE
        result = await session.execute(
            statement, _account_parameters(shipment_id, account_id, mode)
        )
    rows = result.all()
    if not rows:
        return None
    return rows[0][0], [parcel for _, parcel in rows]


async def get_many_for_account(
    session: AsyncSession,
    shipment_ids: Sequence[uuid.UUID],
    account_id: uuid.UUID,
    mode: ShipmentMode | None = None,
    *,
    for_update: bool = False,
) -> list[Shipment]:
    """``for_update``: the rows locked (in id order, so two batches cannot deadlock) until the
    request's transaction ends, and read as they stand once locked."""
    statement = select(Shipment).where(
        Shipment.id.in_(shipment_ids), Shipment.account_id == account_id
    )
    if mode is not None:
        statement = statement.where(Shipment.mode == mode.value)
    if for_update:
        statement = (
            statement.order_by(Shipment.id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    rows = await session.scalars(statement)
    return list(rows)


_BY_TRACKING_CODE = select(Shipment).where(Shipment.tracking_code == bindparam("code"))


async def get_by_tracking_code(session: AsyncSession, tracking_code: str) -> Shipment | None:
    return await session.scalar(_BY_TRACKING_CODE, {"code": tracking_code})


async def parcels_of(
    session: AsyncSession, shipment_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[Parcel]]:
    found: dict[uuid.UUID, list[Parcel]] = defaultdict(list)
    if not shipment_ids:
        return found
    rows = await session.scalars(
        select(Parcel)
        .where(Parcel.shipment_id.in_(shipment_ids))
        .order_by(Parcel.shipment_id, Parcel.sequence)
    )
    for parcel in rows:
        found[parcel.shipment_id].append(parcel)
    return found


async def events_of(session: AsyncSession, shipment_id: uuid.UUID) -> list[ShipmentEvent]:
    rows = await session.scalars(
        select(ShipmentEvent)
        .where(ShipmentEvent.shipment_id == shipment_id)
        .order_by(ShipmentEvent.occurred_at, ShipmentEvent.id)
    )
    return list(rows)


def list_statement(filters: ShipmentFilters, *, mode: ShipmentMode | None = None) -> Select[Any]:
    """``mode`` None: both modes' shipments."""
    statement = select(Shipment)
    if filters.account_id is not None:
        statement = statement.where(Shipment.account_id == filters.account_id)
    if mode is not None:
        statement = statement.where(Shipment.mode == mode.value)
    if filters.status is not None:
        statement = statement.where(Shipment.status == filters.status.value)
    if filters.carrier is not None:
        statement = statement.where(Shipment.carrier == filters.carrier.value)
    if filters.reference is not None:
        statement = statement.where(Shipment.reference == filters.reference)
    if filters.tracking_code is not None:
        statement = statement.where(Shipment.tracking_code == filters.tracking_code)
    if filters.created_from is not None:
        statement = statement.where(Shipment.created_at >= filters.created_from)
    if filters.created_to is not None:
        statement = statement.where(Shipment.created_at < filters.created_to)
    return statement


def _restriction_of(account: Any, email: Any, phone: Any) -> ColumnElement[bool]:
    """A restriction or objection (AVG art. 18/21) by the account, the e-mail or the phone
    (their blind indexes); each a value, or a list of values of which any matches."""

    def by(kind: str, value: Any) -> ColumnElement[bool]:
        matches = (
            SubjectRestriction.value.in_(value)
            if isinstance(value, list)
            else SubjectRestriction.value == value
        )
        return (SubjectRestriction.kind == kind) & matches

    return or_(by("account", account), by("email", email), by("phone", phone))


async def restricted_matches(
    session: AsyncSession,
    *,
    account_id: uuid.UUID,
    email_indexes: Sequence[str],
    phone_indexes: Sequence[str],
) -> tuple[bool, set[str], set[str]]:
    """Which of these recipients (or the account itself) restricted or objected."""
    restricted = _restriction_of(
        str(account_id), sorted(set(email_indexes)), sorted(set(phone_indexes))
    )
    rows = (
        await session.execute(
            select(SubjectRestriction.kind, SubjectRestriction.value).where(restricted)
        )
    ).all()
    account = any(kind == "account" for kind, _ in rows)
    emails = {value for kind, value in rows if kind == "email"}
    phones = {value for kind, value in rows if kind == "phone"}
    return account, emails, phones


async def insert_shipments(
    session: AsyncSession,
    shipments: list[dict[str, Any]],
    parcels: list[dict[str, Any]],
    events: list[dict[str, Any]],
) -> None:
    """Set-based: three multi-row INSERTs whatever the number of shipments."""
    await session.execute(insert(Shipment), shipments)
    await session.execute(insert(Parcel), parcels)
    await session.execute(insert(ShipmentEvent), events)


# A UUIDv7 made by PostgreSQL 13+ (before uuidv7() of 18): a random UUID whose first 48 bits
# become the Unix time in milliseconds and whose version nibble becomes 7.
_UUID7 = literal_column(
    "encode(set_bit(set_bit(overlay(uuid_send(gen_random_uuid()) placing "
    "substring(int8send(floor(extract(epoch from clock_timestamp()) * 1000)::bigint) from 3) "
    "from 1 for 6), 52, 1), 53, 1), 'hex')::uuid",
    Uuid(),
)


CREATE_PARCEL_COLUMNS = ("id", *PARCEL_DOCUMENT_FIELDS)
"""The parcel columns ``CREATE_ONE`` takes as ``parcel_<column>`` arrays."""


def _create_one() -> Select[tuple[uuid.UUID]]:
    """One shipment, its parcels, its first event and its webhook deliveries in one statement.

    Parameters: the shipment's columns by name (but ``is_restricted``, which the statement
    decides), ``parcel_<column>`` arrays in parcel order, ``event_<column>``, and
    ``webhook_event``, ``webhook_data`` and ``webhook_data_restricted`` (JSON text: the event's
    data for an unrestricted and for a restricted shipment, 0206), ``webhook_created_at`` (its
    text) and ``webhook_give_up_at`` for the deliveries. As one statement it is one
    transaction: all of it is stored or none.
    """
    shipments = Shipment.__table__
    values: dict[str, Any] = {
        column.key: bindparam(column.key, type_=column.type)
        for column in shipments.columns
        if column.key != "is_restricted"
    }
    values["is_restricted"] = (
        select(SubjectRestriction.id)
        .where(
            _restriction_of(
                cast(bindparam("account_id", type_=Uuid()), String),
                values["recipient_email_index"],
                values["recipient_phone_index"],
            )
        )
        .exists()
    )
    shipment = (
        insert(Shipment)
        .values(values)
        .returning(Shipment.id, Shipment.is_restricted)
        .cte("shipment")
    )
    parcels = (
        insert(Parcel)
        .from_select(
            ["shipment_id", *CREATE_PARCEL_COLUMNS],
            select(
                shipment.c.id,
                *(
                    func.unnest(
                        bindparam(f"parcel_{name}", type_=ARRAY(Parcel.__table__.c[name].type))
                    )
                    for name in CREATE_PARCEL_COLUMNS
                ),
            ),
        )
        .cte("parcels")
    )
    event_columns = [c.key for c in ShipmentEvent.__table__.columns if c.key != "shipment_id"]
    event = (
        insert(ShipmentEvent)
        .from_select(
            ["shipment_id", *event_columns],
            select(
                shipment.c.id,
                *(
                    bindparam(f"event_{name}", type_=ShipmentEvent.__table__.c[name].type)
                    for name in event_columns
                ),
            ),
        )
        .cte("event")
    )
    event_name = bindparam("webhook_event", type_=String())
    endpoints = (
        select(WebhookEndpoint.id.label("endpoint_id"), _UUID7.label("id"))
        .where(
            WebhookEndpoint.account_id == bindparam("account_id"),
            WebhookEndpoint.is_active.is_(True),
            type_coerce(WebhookEndpoint.events, JSONB).has_key(event_name),
        )
        # An endpoint deleted at this moment is gone before the read or waits for it (see
        # ``webhooks.outbox.enqueue_webhooks``).
        .with_for_update(read=True, key_share=True)
        .cte("endpoints")
    )
    deliveries = (
        insert(WebhookDelivery)
        .from_select(
            [
                "id",
                "endpoint_id",
                "account_id",
                "shipment_id",
                "event",
                "payload",
                "state",
                "attempts",
                "next_attempt_at",
                "give_up_at",
                "created_at",
            ],
            select(
                endpoints.c.id,
                endpoints.c.endpoint_id,
                bindparam("account_id"),
                shipment.c.id,
                event_name,
                func.jsonb_build_object(
                    "id",
                    cast(endpoints.c.id, String),
                    "type",
                    event_name,
                    "created_at",
                    bindparam("webhook_created_at", type_=String()),
                    "data",
                    case(
                        (
                            shipment.c.is_restricted,
                            bindparam("webhook_data_restricted", type_=JSONB()),
                        ),
                        else_=bindparam("webhook_data", type_=JSONB()),
                    ),
                ),
                literal(DeliveryState.PENDING),
                literal(0),
                bindparam("created_at"),
                bindparam("webhook_give_up_at", type_=UTCDateTime()),
                bindparam("created_at"),
            ),
        )
        .cte("deliveries")
    )
    return select(shipment.c.id).add_cte(parcels, event, deliveries)


CREATE_ONE = _create_one()
