"""``GET /v1/tracking/{tracking_code}``: public, rate-limited track & trace."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request

from libs.common.db import SessionDep
from libs.common.errors import problem_responses
from libs.common.logging import client_ip
from libs.common.ratelimit import RateLimiter
from services.shipping_api.dependencies import SettingsDep
from services.shipping_api.tracking import service
from services.shipping_api.tracking.schemas import TrackingRead

router = APIRouter(prefix="/v1/tracking", tags=["tracking"])


@router.get(
    "/{tracking_code}",
    response_model=TrackingRead,
    summary="Track a parcel (public)",
    description=(
        "No login. Status and dates only; add the recipient's `postcode` to see the event "
        "history and the city. Rate-limited per client address, and postcode attempts per "
        "tracking code, so codes and postcodes cannot be guessed."
    ),
    responses=problem_responses(404, 422, 429),
)
async def track(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    tracking_code: Annotated[str, Path(max_length=32, examples=["PP7K3QX9M2T4HWB"])],
    postcode: Annotated[
        str | None,
        Query(max_length=12, description="The recipient's postcode.", examples=["3191 EE"]),
    ] = None,
) -> TrackingRead:
    limiter: RateLimiter = request.app.state.rate_limiter
    peer = request.client.host if request.client else None
    ip = client_ip(peer, request.headers.get("x-forwarded-for"), settings.trusted_proxies)
    await limiter.enforce(settings.tracking_rate_limit, "tracking", ip or "unknown")
    shipment = await service.find(session, tracking_code)
    verified = False
    if postcode:
        await limiter.enforce(
            settings.tracking_postcode_rate_limit, "tracking-postcode", shipment.tracking_code
        )
        verified = service.postcode_matches(shipment, postcode)
    return await service.tracking_view(session, shipment, postcode_verified=verified)
