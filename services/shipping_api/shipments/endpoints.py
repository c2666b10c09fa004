"""``/v1/shipments``: create (single and bulk), list, read, cancel, events and the sandbox."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import Response

from libs.common.auth import Principal, Scope, require_account
from libs.common.clock import ClockDep
from libs.common.db import ReadSessionDep, SessionDep
from libs.common.errors import ValidationFailed, problem_responses
from libs.common.idempotency import IdempotencyDep, IdempotencyKeyHeader
from libs.common.openapi import operation_link
from libs.common.pagination import Page, PageParamsDep
from libs.common.validation import Timestamp
from services.shipping_api.dependencies import (
    BlindIndexDep,
    OutboxesDep,
    RateTableDep,
)
from services.shipping_api.errors import ShipmentNotFound
from services.shipping_api.models import Parcel, Shipment
from services.shipping_api.shipments import events, repository, service
from services.shipping_api.shipments.access import (
    ShipmentReaderDep,
    key_mode,
    record_staff_access,
    record_staff_reads,
)
from services.shipping_api.shipments.document import shipment_document
from services.shipping_api.shipments.schemas import (
    BulkResult,
    Money,
    ParcelRead,
    RecipientRead,
    ShipmentBulkCreate,
    ShipmentCreate,
    ShipmentEventRead,
    ShipmentFilters,
    ShipmentRead,
    SimulateRequest,
)
from services.shipping_api.shipments.tracking_codes import normalise_tracking_code
from services.shipping_api.vocabulary import (
    Carrier,
    DeliveryService,
    ShipmentMode,
    ShipmentStatus,
)

router = APIRouter(prefix="/v1/shipments", tags=["shipments"])

Writer = Annotated[Principal, Depends(require_account(Scope.SHIPMENTS_WRITE))]

_SHIPMENT = {"shipment_id": "$response.body#/id"}
CREATED_LINKS = {
    "GetShipment": operation_link(
        "GET", "/v1/shipments/{shipment_id}", _SHIPMENT, "The shipment just created."
    ),
    "ListShipmentEvents": operation_link(
        "GET", "/v1/shipments/{shipment_id}/events", _SHIPMENT, "Its status history."
    ),
    "GetShipmentLabel": operation_link(
        "GET", "/v1/shipments/{shipment_id}/label", _SHIPMENT, "Print its label."
    ),
    "CancelShipment": operation_link(
        "POST", "/v1/shipments/{shipment_id}/cancel", _SHIPMENT, "Cancel it."
    ),
    "SimulateShipment": operation_link(
        "POST",
        "/v1/shipments/{shipment_id}/simulate",
        _SHIPMENT,
        "Sandbox shipments: move it to its next status.",
    ),
    "TrackShipment": operation_link(
        "GET",
        "/v1/tracking/{tracking_code}",
        {"tracking_code": "$response.body#/tracking_code"},
        "Public track & trace of it.",
    ),
}


def shipment_read(shipment: Shipment, parcels: list[Parcel]) -> ShipmentRead:
    recipient = None
    if shipment.recipient_erased_at is None:
        recipient = RecipientRead(
            name=shipment.recipient_name,
            contact_person=shipment.recipient_contact_person,
            street=shipment.recipient_street,
            house_number=shipment.recipient_house_number,
            postcode=shipment.recipient_postcode,
            city=shipment.recipient_city,
            country=shipment.recipient_country,
            email=shipment.recipient_email,
            phone=shipment.recipient_phone,
        )
    return ShipmentRead(
        id=shipment.id,
        reference=shipment.reference,
        carrier=Carrier(shipment.carrier),
        service=DeliveryService(shipment.service),
        status=ShipmentStatus(shipment.status),
        tracking_code=shipment.tracking_code,
        mode=ShipmentMode(shipment.mode),
        recipient=recipient,
        parcel_count=shipment.parcel_count,
        parcels=[ParcelRead.model_validate(parcel) for parcel in parcels],
        price=Money(amount_cents=shipment.price_cents, currency=shipment.currency),
        created_at=shipment.created_at,
        updated_at=shipment.updated_at,
        status_changed_at=shipment.status_changed_at,
    )


def creation_context(
    principal: Principal,
    *,
    clock: ClockDep,
    rates: RateTableDep,
    blind_index: BlindIndexDep,
    outboxes: OutboxesDep,
) -> service.CreationContext:
    assert principal.account_id is not None  # noqa: S101 - require_account guarantees it
    return service.CreationContext(
        account_id=principal.account_id,
        mode=ShipmentMode.TEST if principal.mode == "test" else ShipmentMode.LIVE,
        now=clock.now(),
        rates=rates,
        blind_index=blind_index,
        outboxes=outboxes,
    )


def idempotency_scope(context: service.CreationContext) -> str:
    """Whose ``Idempotency-Key``s these are: the account's, per mode (0205), so a live retry
    never gets a sandbox answer back. Live keeps the account id alone, the scope stored live
    answers were recorded under."""
    if context.mode is ShipmentMode.TEST:
        return f"account:{context.account_id}:test"
    return str(context.account_id)


@router.post(
    "",
    status_code=201,
    response_model=ShipmentRead,
    summary="Create a shipment",
    description=(
        "Validates the recipient and parcels against the carrier's rules, prices the shipment "
        "from the rate table and assigns a tracking code. Shipments made with a `pp_test_` key "
        "are sandbox shipments (`mode: test`). An `Idempotency-Key` is the key mode's own: a "
        "live key's never replays a test key's answer."
    ),
    responses={
        201: {"description": "The shipment.", "links": CREATED_LINKS},
        **problem_responses(401, 403, 409, 422),
    },
)
async def create_shipment(
    body: ShipmentCreate,
    request: Request,
    principal: Writer,
    session: SessionDep,
    clock: ClockDep,
    rates: RateTableDep,
    blind_index: BlindIndexDep,
    outboxes: OutboxesDep,
    idempotency: IdempotencyDep,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    context = creation_context(
        principal, clock=clock, rates=rates, blind_index=blind_index, outboxes=outboxes
    )
    async with idempotency.guard(
        request, session, scope=idempotency_scope(context), key=idempotency_key, now=context.now
    ) as claim:
        if claim.replay is not None:
            return claim.replay
        shipment, parcels = await service.create_shipment(session, body, context)
        return await claim.complete(
            201,
            shipment_read(shipment, parcels),
            resource_id=shipment.id,
            location=f"/v1/shipments/{shipment.id}",
        )


@router.post(
    "/bulk",
    response_model=BulkResult,
    summary="Create up to 1,000 shipments at once",
    description=(
        "Every item is checked and stored on its own: the answer lists, per item (by `index`), "
        "either the created shipment (`status: 201`), its field problems (`status: 422`, "
        "`errors`) or, for a valid item that could not be stored, `status: 409` with a "
        "`detail` (nothing was created for it; send it again)."
    ),
    responses=problem_responses(401, 403, 409, 422),
)
async def create_bulk(
    body: ShipmentBulkCreate,
    request: Request,
    principal: Writer,
    session: SessionDep,
    clock: ClockDep,
    rates: RateTableDep,
    blind_index: BlindIndexDep,
    outboxes: OutboxesDep,
    idempotency: IdempotencyDep,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    context = creation_context(
        principal, clock=clock, rates=rates, blind_index=blind_index, outboxes=outboxes
    )
    async with idempotency.guard(
        request, session, scope=idempotency_scope(context), key=idempotency_key, now=context.now
    ) as claim:
        if claim.replay is not None:
            return claim.replay
        result = await service.create_bulk(session, body.shipments, context)
        return await claim.complete(200, result)


@router.get(
    "",
    response_model=Page[ShipmentRead],
    summary="List shipments, newest first",
    description=(
        "Account holders see their own shipments: an API key only those of its mode (a "
        "`pp_test_` key the sandbox's, a live key the live ones), the account holder's login "
        "both (`?mode=` for one). Support staff (with `X-Access-Reason`) must filter by "
        "`account_id` or `tracking_code`; each look-up is audited."
    ),
    responses=problem_responses(401, 403, 422),
)
async def list_shipments(
    reader: ShipmentReaderDep,
    session: SessionDep,
    clock: ClockDep,
    page: PageParamsDep,
    status: Annotated[ShipmentStatus | None, Query(description="Only this status.")] = None,
    carrier: Annotated[Carrier | None, Query()] = None,
    reference: Annotated[
        str | None, Query(max_length=100, description="Your reference, exactly.")
    ] = None,
    tracking_code: Annotated[str | None, Query(max_length=32)] = None,
    created_from: Annotated[
        Timestamp | None, Query(description="Created at or after (RFC 3339).")
    ] = None,
    created_to: Annotated[Timestamp | None, Query(description="Created before (RFC 3339).")] = None,
    account_id: Annotated[
        uuid.UUID | None, Query(description="Staff only: the account to look at.")
    ] = None,
    mode: Annotated[
        ShipmentMode | None,
        Query(description="Only live or only sandbox shipments (an API key sees its own mode)."),
    ] = None,
) -> Page[ShipmentRead]:
    code = None
    if tracking_code is not None:
        code = normalise_tracking_code(tracking_code)
        if code is None:
            raise ValidationFailed.for_field(
                "tracking_code", "not a Parcel Pro tracking code", location="query"
            )
    for name, moment in (("created_from", created_from), ("created_to", created_to)):
        if moment is not None and moment.tzinfo is None:
            raise ValidationFailed.for_field(name, "give a time zone (e.g. Z)", location="query")
    if reader.is_staff:
        if account_id is None and code is None:
            raise ValidationFailed.for_field(
                "account_id", "staff must name an account_id or a tracking_code", location="query"
            )
    else:
        if account_id is not None and account_id != reader.account_id:
            raise ValidationFailed.for_field(
                "account_id", "account holders see their own shipments only", location="query"
            )
        account_id = reader.account_id
        if reader.mode is not None:
            if mode is not None and mode is not reader.mode:
                raise ValidationFailed.for_field(
                    "mode",
                    f"this API key sees {reader.mode.value} shipments only",
                    location="query",
                )
            mode = reader.mode
    filters = ShipmentFilters(
        status=status,
        carrier=carrier,
        reference=reference,
        tracking_code=code,
        created_from=created_from,
        created_to=created_to,
        account_id=account_id,
    )
    rows, next_cursor = await service.list_shipments(session, filters, page, mode=mode)
    if code is not None and rows:
        # 0210: the entry names whose shipment was seen, which a code alone does not.
        await record_staff_reads(
            session,
            reader,
            action="list_shipments",
            now=clock.now(),
            seen=[(shipment.account_id, shipment.id) for shipment, _ in rows],
        )
    else:
        await record_staff_access(
            session, reader, action="list_shipments", now=clock.now(), account_id=account_id
        )
    return Page[ShipmentRead](
        data=[shipment_read(s, parcels) for s, parcels in rows], next_cursor=next_cursor
    )


@router.get(
    "/{shipment_id}",
    response_model=ShipmentRead,
    summary="Get a shipment",
    responses=problem_responses(401, 403, 404, 422),
)
async def get_shipment(
    shipment_id: uuid.UUID,
    reader: ShipmentReaderDep,
    session: ReadSessionDep,
    clock: ClockDep,
) -> Response:
    rows = await repository.document_rows(session, shipment_id, reader.account_id, reader.mode)
    if not rows:
        raise ShipmentNotFound()
    await record_staff_access(
        session,
        reader,
        action="read_shipment",
        now=clock.now(),
        account_id=rows[0]["account_id"],
        shipment_id=shipment_id,
    )
    return Response(shipment_document(rows), media_type="application/json")


@router.get(
    "/{shipment_id}/events",
    response_model=Page[ShipmentEventRead],
    summary="The shipment's status history, oldest first",
    description=(
        "A page of the shipment's status changes in the order they happened. Support staff "
        "(with `X-Access-Reason`) may read any shipment's history; each page read is audited."
    ),
    responses=problem_responses(401, 403, 404, 422),
)
async def list_events(
    shipment_id: uuid.UUID,
    reader: ShipmentReaderDep,
    session: SessionDep,
    clock: ClockDep,
    page: PageParamsDep,
) -> Page[ShipmentEventRead]:
    shipment, _ = await service.get_shipment(session, shipment_id, reader.account_id, reader.mode)
    await record_staff_access(
        session,
        reader,
        action="read_events",
        now=clock.now(),
        account_id=shipment.account_id,
        shipment_id=shipment.id,
    )
    rows, next_cursor = await events.page_events(session, shipment.id, page)
    return Page[ShipmentEventRead](
        data=[
            ShipmentEventRead(
                status=ShipmentStatus(event.status),
                occurred_at=event.occurred_at,
                recorded_at=event.recorded_at,
                city=event.city,
                description=event.description,
            )
            for event in rows
        ],
        next_cursor=next_cursor,
    )


@router.post(
    "/{shipment_id}/cancel",
    response_model=ShipmentRead,
    summary="Cancel a shipment before it is handed to the carrier",
    responses=problem_responses(401, 403, 404, 409),
)
async def cancel_shipment(
    shipment_id: uuid.UUID,
    principal: Writer,
    session: SessionDep,
    clock: ClockDep,
    outboxes: OutboxesDep,
) -> ShipmentRead:
    assert principal.account_id is not None  # noqa: S101
    shipment = await service.cancel_shipment(
        session,
        shipment_id,
        principal.account_id,
        mode=key_mode(principal),
        now=clock.now(),
        outboxes=outboxes,
    )
    _, parcels = await service.get_shipment(session, shipment.id, principal.account_id)
    return shipment_read(shipment, parcels)


@router.post(
    "/{shipment_id}/simulate",
    response_model=ShipmentRead,
    summary="Sandbox: move a test shipment to its next status",
    description=(
        "Only with a `pp_test_` key, for the shipments made with one: lets an integration see "
        "every status, webhook and label flow without a carrier. A live key does not see "
        "sandbox shipments (`404`); illegal transitions are `409`."
    ),
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def simulate(
    shipment_id: uuid.UUID,
    principal: Writer,
    session: SessionDep,
    clock: ClockDep,
    outboxes: OutboxesDep,
    body: SimulateRequest | None = None,
) -> ShipmentRead:
    assert principal.account_id is not None  # noqa: S101
    request = body or SimulateRequest()
    shipment = await service.simulate(
        session,
        shipment_id,
        principal.account_id,
        mode=key_mode(principal),
        status=request.status,
        city=request.city,
        now=clock.now(),
        outboxes=outboxes,
    )
    _, parcels = await service.get_shipment(session, shipment.id, principal.account_id)
    return shipment_read(shipment, parcels)
