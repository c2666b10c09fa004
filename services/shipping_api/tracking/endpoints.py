"""``GET /v1/tracking/{tracking_code}``: public, rate-limited track & trace."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response

from libs.common.db import read_unit
from libs.common.errors import TooManyRequests, problem_responses
from libs.common.logging import request_client_ip
from libs.common.ratelimit import RateLimiter
from services.shipping_api.settings import ShippingSettings
from services.shipping_api.shipments.tracking_codes import normalise_tracking_code
from services.shipping_api.tracking import service
from services.shipping_api.tracking.cache import TrackingCache
from services.shipping_api.tracking.schemas import TrackingRead

router = APIRouter(prefix="/v1/tracking", tags=["tracking"])
MAX_TYPED_LENGTH = 32
"""A code as people type it (spaces, dashes); longer is a 422."""
VERIFIED_ADDRESS_MEMORY = "1/hour"
"""A one-hit window marks an address that showed the right postcode for a code: it is "limited"
(remembered) for one to two hours, and stays let in while the code is locked."""


@router.get(
    "/{tracking_code}",
    response_model=TrackingRead,
    summary="Track a parcel (public)",
    description=(
        "No login. Status and dates only; add the recipient's `postcode` to see the event "
        "history and the city. Rate-limited per client address, and wrong postcodes per "
        "tracking code, so codes and postcodes cannot be guessed."
    ),
    responses=problem_responses(404, 422, 429),
)
async def track(
    request: Request,
    tracking_code: Annotated[str, Path(max_length=MAX_TYPED_LENGTH, examples=["PP7K3QX9M2T4HWB"])],
    postcode: Annotated[
        str | None,
        Query(max_length=12, description="The recipient's postcode.", examples=["3191 EE"]),
    ] = None,
) -> TrackingRead | Response:
    # The busiest public route (recipients refreshing): collaborators come straight from the
    # app and the database session is opened only when the answer is not cached, since each
    # FastAPI dependency costs measurably here (docs/performance.md).
    state = request.app.state
    settings: ShippingSettings = state.settings
    limiter: RateLimiter = state.rate_limiter
    await limiter.enforce(settings.tracking_rate_limit, "tracking", request_client_ip(request))
    cache: TrackingCache = state.tracking_cache
    code = normalise_tracking_code(tracking_code)
    if not postcode and code and (cached := cache.get(code)):
        return Response(cached, media_type="application/json")
    async with read_unit(state.database) as session:
        shipment = await service.find(session, tracking_code)
        verified = False
        if postcode:
            verified = service.postcode_matches(shipment, postcode)
            await count_postcode_attempt(
                limiter, settings, shipment.tracking_code, request_client_ip(request), verified
            )
        view = await service.tracking_view(session, shipment, postcode_verified=verified)
    cache.put(view)
    return view


async def count_postcode_attempt(
    limiter: RateLimiter,
    settings: ShippingSettings,
    tracking_code: str,
    client: str,
    is_match: bool,
) -> None:
    """Only wrong postcodes count against the code (0204), so a recipient refreshing the page
    never uses the budget up. Once a code has had too many wrong ones, every postcode attempt
    for it is 429 (else the difference between 429 and 200 would keep answering guesses),
    except from an address that showed the right postcode before the lock."""
    limit = settings.tracking_postcode_rate_limit
    wait = await limiter.is_limited(limit, "tracking-postcode", tracking_code)
    if wait and not (
        is_match
        and await limiter.is_limited(
            VERIFIED_ADDRESS_MEMORY, "tracking-postcode-verified", tracking_code, client
        )
    ):
        raise TooManyRequests(wait, "too many wrong postcodes for this code; try again later")
    if is_match:
        await limiter.hit(
            VERIFIED_ADDRESS_MEMORY, "tracking-postcode-verified", tracking_code, client
        )
    else:
        await limiter.enforce(limit, "tracking-postcode", tracking_code)
