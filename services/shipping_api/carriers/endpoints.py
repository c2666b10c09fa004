"""``POST /v1/carriers/{carrier}/events``: status events pushed by carriers, HMAC-signed."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Request

from libs.common.clock import ClockDep
from libs.common.db import SessionDep
from libs.common.errors import Unauthorized, problem_responses
from services.shipping_api.carriers import service
from services.shipping_api.carriers.schemas import CarrierEventIn, CarrierEventResult
from services.shipping_api.carriers.signatures import SIGNATURE_HEADER, is_valid
from services.shipping_api.dependencies import OutboxesDep, SettingsDep
from services.shipping_api.vocabulary import Carrier

router = APIRouter(prefix="/v1/carriers", tags=["carriers"])


async def verified_carrier(
    carrier: Carrier,
    request: Request,
    settings: SettingsDep,
    signature: Annotated[
        str | None,
        Header(
            alias=SIGNATURE_HEADER,
            max_length=100,
            description="`sha256=` + hex HMAC-SHA256 of the raw body with your secret.",
        ),
    ] = None,
) -> Carrier:
    """Checked before the body is even parsed: unsigned requests learn nothing."""
    secret = settings.carrier_secrets.get(carrier.value, "")
    if not secret or not is_valid(secret, await request.body(), signature):
        raise Unauthorized("missing or invalid carrier signature")
    return carrier


@router.post(
    "/{carrier}/events",
    response_model=CarrierEventResult,
    summary="A carrier reports a status change",
    description=(
        "Authenticated by an HMAC-SHA256 signature of the body with the carrier's secret. "
        "Resending an event (same `event_id`) is harmless: it is recognised and ignored. "
        "An event older (by `occurred_at`) than the one the shipment's status came from is "
        "recorded in its place in the history and leaves the status as it is; a newer status "
        "the shipment cannot move to is `409`. A time in the future is recorded as the moment "
        "the event arrives."
    ),
    responses=problem_responses(401, 404, 409, 422),
)
async def carrier_event(
    body: CarrierEventIn,
    carrier: Annotated[Carrier, Depends(verified_carrier)],
    session: SessionDep,
    clock: ClockDep,
    outboxes: OutboxesDep,
) -> CarrierEventResult:
    return await service.record_carrier_event(
        session, carrier, body, now=clock.now(), outboxes=outboxes
    )
