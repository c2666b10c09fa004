"""Creating, finding, cancelling and simulating shipments: the rules, no HTTP."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.db import uuid7
from libs.common.errors import Conflict, FieldError, ValidationFailed, validation_errors
from libs.common.pagination import PageParams, paginate_by_id
from services.shipping_api.carriers.catalogue import (
    CARRIERS,
    RateTable,
    max_parcels,
    parcel_limits,
)
from services.shipping_api.errors import IllegalTransition, ShipmentNotFound
from services.shipping_api.models import Parcel, Shipment
from services.shipping_api.recipients.blind_index import BlindIndex
from services.shipping_api.shipments import repository
from services.shipping_api.shipments.document import PARCEL_DOCUMENT_FIELDS
from services.shipping_api.shipments.lifecycle import EventSource, Outboxes, change_status
from services.shipping_api.shipments.schemas import (
    BulkItemResult,
    BulkResult,
    Money,
    ShipmentCreate,
    ShipmentFilters,
    ShipmentSummary,
)
from services.shipping_api.shipments.tracking_codes import new_tracking_code
from services.shipping_api.vocabulary import (
    CANCELLABLE_STATUSES,
    HAPPY_PATH,
    STATUS_DESCRIPTIONS,
    ShipmentMode,
    ShipmentStatus,
    WebhookEvent,
)
from services.shipping_api.webhooks.outbox import (
    ShipmentWebhookEvent,
    enqueue_webhooks,
    shipment_event_data,
)


@dataclass
class PreparedShipment:
    """A checked and priced shipment, ready for a set-based insert."""

    row: dict[str, Any]
    parcels: list[dict[str, Any]]
    event: dict[str, Any]
    index: int = 0

    @property
    def id(self) -> uuid.UUID:
        value = self.row["id"]
        assert isinstance(value, uuid.UUID)  # noqa: S101 - set by prepare_shipment
        return value

    def summary(self) -> ShipmentSummary:
        return ShipmentSummary(
            id=self.id,
            tracking_code=self.row["tracking_code"],
            status=ShipmentStatus(self.row["status"]),
            price=Money(amount_cents=self.row["price_cents"], currency=self.row["currency"]),
        )


@dataclass
class CreationContext:
    account_id: uuid.UUID
    mode: ShipmentMode
    now: datetime
    rates: RateTable
    blind_index: BlindIndex
    outboxes: Outboxes
    errors: list[FieldError] = field(default_factory=list)


def postcode_area(postcode: str) -> str:
    """The first four characters (the Dutch PC4 area): coarse enough to count, never to find."""
    return postcode.replace(" ", "").replace("-", "")[:4]


def _price_and_check(item: ShipmentCreate, rates: RateTable) -> tuple[int, list[FieldError]]:
    errors: list[FieldError] = []

    def error(field_name: str, message: str) -> None:
        errors.append(
            FieldError(field=field_name, location="body", message=message, type="value_error")
        )

    carrier, service, country = item.carrier, item.service, item.recipient.country
    if not rates.is_offered(carrier, service):
        offered = ", ".join(rates.services_of(carrier))
        error("service", f"{CARRIERS[carrier].display_name} offers: {offered}")
        return 0, errors
    tiers = rates.tiers(carrier, service, country)
    if tiers is None:
        error(
            "recipient.country",
            f"{CARRIERS[carrier].display_name} {service.value} does not deliver to {country}",
        )
        return 0, errors
    limit_count = max_parcels(carrier, service)
    if len(item.parcels) > limit_count:
        error("parcels", f"at most {limit_count} parcel(s) for {carrier.value} {service.value}")
    limits = parcel_limits(carrier, service)
    total = 0
    for position, parcel in enumerate(item.parcels):
        prefix = f"parcels.{position}"
        length, width, height = sorted(
            (parcel.length_cm, parcel.width_cm, parcel.height_cm), reverse=True
        )
        if parcel.weight_grams > limits.max_weight_grams:
            error(f"{prefix}.weight_grams", f"at most {limits.max_weight_grams} g")
        if length > limits.max_length_cm:
            error(f"{prefix}.length_cm", f"the longest side may be {limits.max_length_cm} cm")
        if limits.max_width_cm is not None and width > limits.max_width_cm:
            error(f"{prefix}.width_cm", f"the middle side may be {limits.max_width_cm} cm")
        if limits.max_height_cm is not None and height > limits.max_height_cm:
            error(f"{prefix}.height_cm", f"the shortest side may be {limits.max_height_cm} cm")
        if length + 2 * width + 2 * height > limits.max_girth_cm:
            error(prefix, f"length + 2 x width + 2 x height may be {limits.max_girth_cm} cm")
        price = next((cents for up_to, cents in tiers if parcel.weight_grams <= up_to), None)
        if price is None:
            error(f"{prefix}.weight_grams", f"at most {tiers[-1][0]} g to {country}")
        else:
            total += price
    return total, errors


def prepare_shipment(item: ShipmentCreate, context: CreationContext) -> PreparedShipment:
    """Check one shipment against the carrier's rules and price it (raises 422)."""
    price, errors = _price_and_check(item, context.rates)
    if errors:
        detail = "; ".join(f"{e.field}: {e.message}" for e in errors[:5])
        raise ValidationFailed(detail, errors=errors)
    now = context.now
    shipment_id = uuid7()
    recipient = item.recipient
    row: dict[str, Any] = {
        "id": shipment_id,
        "account_id": context.account_id,
        "mode": context.mode.value,
        "reference": item.reference,
        "carrier": item.carrier.value,
        "service": item.service.value,
        "status": ShipmentStatus.CREATED.value,
        "tracking_code": new_tracking_code(),
        "parcel_count": len(item.parcels),
        "price_cents": price,
        "currency": context.rates.currency,
        "recipient_name": recipient.name,
        "recipient_contact_person": recipient.contact_person,
        "recipient_street": recipient.street,
        "recipient_house_number": recipient.house_number,
        "recipient_postcode": recipient.postcode,
        "recipient_city": recipient.city,
        "recipient_country": recipient.country,
        "recipient_email": recipient.email,
        "recipient_phone": recipient.phone,
        "recipient_email_index": context.blind_index.email(recipient.email, normalised=True),
        "recipient_phone_index": context.blind_index.phone(recipient.phone, normalised=True),
        "country_code": recipient.country,
        "postcode_area": postcode_area(recipient.postcode),
        "is_restricted": False,
        "created_at": now,
        "updated_at": now,
        "status_changed_at": now,
        "final_at": None,
        "recipient_erased_at": None,
    }
    parcels = [
        {
            "id": uuid7(),
            "shipment_id": shipment_id,
            "sequence": position,
            "weight_grams": parcel.weight_grams,
            "length_cm": parcel.length_cm,
            "width_cm": parcel.width_cm,
            "height_cm": parcel.height_cm,
        }
        for position, parcel in enumerate(item.parcels, start=1)
    ]
    event = {
        "id": uuid7(),
        "shipment_id": shipment_id,
        "status": ShipmentStatus.CREATED.value,
        "occurred_at": now,
        "recorded_at": now,
        "city": None,
        "description": STATUS_DESCRIPTIONS[ShipmentStatus.CREATED],
        "source": EventSource.API,
        "carrier": None,
        "carrier_event_id": None,
    }
    return PreparedShipment(row=row, parcels=parcels, event=event)


def created_event_data(item: PreparedShipment, *, is_restricted: bool) -> dict[str, Any]:
    """The ``data`` of the ``shipment.created`` webhook event."""
    return shipment_event_data(
        shipment_id=item.id,
        tracking_code=item.row["tracking_code"],
        reference=item.row["reference"],
        carrier=item.row["carrier"],
        service=item.row["service"],
        mode=item.row["mode"],
        status=item.event["status"],
        occurred_at=item.event["occurred_at"],
        city=item.event["city"],
        description=item.event["description"],
        is_restricted=is_restricted,
    )


async def _flag_restricted(
    session: AsyncSession, prepared: Sequence[PreparedShipment], account_id: uuid.UUID
) -> None:
    """AVG art. 18/21: a restriction or objection also covers shipments made later."""
    emails = [p.row["recipient_email_index"] for p in prepared if p.row["recipient_email_index"]]
    phones = [p.row["recipient_phone_index"] for p in prepared if p.row["recipient_phone_index"]]
    account, restricted_emails, restricted_phones = await repository.restricted_matches(
        session, account_id=account_id, email_indexes=emails, phone_indexes=phones
    )
    for item in prepared:
        item.row["is_restricted"] = (
            account
            or item.row["recipient_email_index"] in restricted_emails
            or item.row["recipient_phone_index"] in restricted_phones
        )


async def store_shipments(
    session: AsyncSession, prepared: list[PreparedShipment], context: CreationContext
) -> list[PreparedShipment]:
    """Insert prepared shipments set-based; fall back to one savepoint per shipment when the
    batch fails, so one bad row does not sink the rest. Returns the ones stored."""
    if not prepared:
        return []
    await _flag_restricted(session, prepared, context.account_id)
    stored: list[PreparedShipment] = []
    try:
        async with session.begin_nested():
            await repository.insert_shipments(
                session,
                [p.row for p in prepared],
                [parcel for p in prepared for parcel in p.parcels],
                [p.event for p in prepared],
            )
        stored = list(prepared)
    except IntegrityError:
        # A tracking-code collision (60 random bits: rare, never impossible). Retry each
        # shipment on its own with a fresh code.
        for item in prepared:
            for _ in range(3):
                item.row["tracking_code"] = new_tracking_code()
                try:
                    async with session.begin_nested():
                        await repository.insert_shipments(
                            session, [item.row], item.parcels, [item.event]
                        )
                except IntegrityError:
                    continue
                stored.append(item)
                break
    await enqueue_webhooks(
        session,
        account_id=context.account_id,
        events=[
            ShipmentWebhookEvent(
                WebhookEvent.SHIPMENT_CREATED,
                item.id,
                created_event_data(item, is_restricted=item.row["is_restricted"]),
            )
            for item in stored
        ],
        now=context.now,
        retry_window=context.outboxes.webhook_retry,
    )
    return stored


async def create_shipment(
    session: AsyncSession, item: ShipmentCreate, context: CreationContext
) -> tuple[Shipment, list[Parcel]]:
    """Store one shipment; returns it as stored (built from the inserted rows, no re-read)."""
    prepared = prepare_shipment(item, context)
    stored = await store_shipments(session, [prepared], context)
    if not stored:
        raise Conflict("the shipment could not be stored; retry")
    return Shipment(**prepared.row), [Parcel(**parcel) for parcel in prepared.parcels]


def direct_create_parameters(item: PreparedShipment, context: CreationContext) -> dict[str, Any]:
    """The parameters of ``repository.CREATE_ONE`` for one prepared shipment."""
    parameters = {name: value for name, value in item.row.items() if name != "is_restricted"}
    for name in repository.CREATE_PARCEL_COLUMNS:
        parameters[f"parcel_{name}"] = [parcel[name] for parcel in item.parcels]
    for name, value in item.event.items():
        parameters[f"event_{name}"] = value
    parameters["webhook_event"] = WebhookEvent.SHIPMENT_CREATED.value
    # Whether the shipment is restricted is decided in the statement, which picks one of these.
    for name, is_restricted in (("webhook_data", False), ("webhook_data_restricted", True)):
        data = created_event_data(item, is_restricted=is_restricted)
        parameters[name] = orjson.dumps(data).decode()
    parameters["webhook_created_at"] = context.now.isoformat()
    parameters["webhook_give_up_at"] = context.now + context.outboxes.webhook_retry
    return parameters


def document_rows(item: PreparedShipment) -> list[dict[str, Any]]:
    """The prepared shipment as the rows ``shipments.document`` renders, one per parcel."""
    return [
        {
            **item.row,
            **{name: parcel[name] for name in PARCEL_DOCUMENT_FIELDS},
        }
        for parcel in item.parcels
    ]


BULK_ITEM_NOT_STORED = (
    "The shipment is valid but could not be stored: it kept clashing with stored data "
    "(its tracking code, drawn afresh on each try). Nothing was created for it; send it again."
)


async def create_bulk(
    session: AsyncSession, items: Sequence[dict[str, Any]], context: CreationContext
) -> BulkResult:
    """Each item is validated and stored on its own merits; the result lists every item."""
    results: dict[int, BulkItemResult] = {}
    prepared: list[PreparedShipment] = []
    for index, raw in enumerate(items):
        try:
            item = ShipmentCreate.model_validate(raw)
            ready = prepare_shipment(item, context)
        except ValidationError as exc:
            errors = validation_errors(
                [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]
            )
            results[index] = BulkItemResult(
                index=index, status=422, errors=[e.model_dump() for e in errors]
            )
            continue
        except ValidationFailed as exc:
            results[index] = BulkItemResult(
                index=index, status=422, errors=[e.model_dump() for e in exc.errors or []]
            )
            continue
        ready.index = index
        prepared.append(ready)
    stored = await store_shipments(session, prepared, context)
    stored_ids = {item.id for item in stored}
    for done in prepared:
        if done.id in stored_ids:
            results[done.index] = BulkItemResult(
                index=done.index, status=201, shipment=done.summary()
            )
        else:
            # Valid, but every insert clashed with stored data (in practice its tracking code,
            # drawn afresh each time): no field of the item is at fault, so no field errors.
            results[done.index] = BulkItemResult(
                index=done.index, status=409, detail=BULK_ITEM_NOT_STORED
            )
    ordered = [results[index] for index in sorted(results)]
    created = sum(1 for result in ordered if result.status == 201)
    return BulkResult(created=created, failed=len(ordered) - created, results=ordered)


async def get_shipment(
    session: AsyncSession,
    shipment_id: uuid.UUID,
    account_id: uuid.UUID | None,
    mode: ShipmentMode | None = None,
) -> tuple[Shipment, list[Parcel]]:
    """``mode``: an API key's (0205: another mode's shipment does not exist for it)."""
    found = await repository.get_with_parcels(session, shipment_id, account_id, mode)
    if found is None:
        raise ShipmentNotFound()
    return found


async def list_shipments(
    session: AsyncSession,
    filters: ShipmentFilters,
    params: PageParams,
    *,
    mode: ShipmentMode | None = None,
) -> tuple[list[tuple[Shipment, list[Parcel]]], str | None]:
    rows, next_cursor = await paginate_by_id(
        session, repository.list_statement(filters, mode=mode), Shipment.id, params
    )
    shipments = [row for row in rows if isinstance(row, Shipment)]
    parcels = await repository.parcels_of(session, [s.id for s in shipments])
    return [(s, parcels.get(s.id, [])) for s in shipments], next_cursor


async def cancel_shipment(
    session: AsyncSession,
    shipment_id: uuid.UUID,
    account_id: uuid.UUID,
    *,
    mode: ShipmentMode | None,
    now: datetime,
    outboxes: Outboxes,
) -> Shipment:
    # Locked, as the carriers' events lock it: a hand-over committed while this request waited
    # is seen, and refuses the cancel, instead of being overwritten by it.
    shipment = await repository.get_for_account(
        session, shipment_id, account_id, mode, for_update=True
    )
    if shipment is None:
        raise ShipmentNotFound()
    if ShipmentStatus(shipment.status) not in CANCELLABLE_STATUSES:
        raise IllegalTransition(
            f"a shipment that is {shipment.status} can no longer be cancelled: only before "
            "it is handed to the carrier"
        )
    await change_status(
        session,
        shipment,
        ShipmentStatus.CANCELLED,
        now=now,
        outboxes=outboxes,
        source=EventSource.API,
    )
    return shipment


async def simulate(
    session: AsyncSession,
    shipment_id: uuid.UUID,
    account_id: uuid.UUID,
    *,
    mode: ShipmentMode | None,
    status: ShipmentStatus | None,
    city: str | None,
    now: datetime,
    outboxes: Outboxes,
) -> Shipment:
    """``mode``: the caller's key's (None: the account holder's own login). A test key or the
    login drives the sandbox (0205); a live key does not see sandbox shipments at all."""
    shipment = await repository.get_for_account(
        session, shipment_id, account_id, mode, for_update=True
    )
    if shipment is None:
        raise ShipmentNotFound()
    if shipment.mode != ShipmentMode.TEST.value:
        raise Conflict(
            "only sandbox shipments (made with a pp_test_ key) can be simulated; live "
            "shipments move with the carrier's scans"
        )
    current = ShipmentStatus(shipment.status)
    target = status or HAPPY_PATH.get(current)
    if target is None:
        raise IllegalTransition(f"a shipment that is {current.value} does not move any more")
    await change_status(
        session,
        shipment,
        target,
        now=now,
        outboxes=outboxes,
        source=EventSource.SIMULATION,
        city=city,
    )
    return shipment
