"""Cached public tracking answers, sent before routing.

A recipient refreshing the tracking page asks for an answer the process already holds as
bytes (``TrackingCache``). Routing it through FastAPI — route matching, parameter validation,
the endpoint, the response object — cost more than the rest of the request together
(docs/performance.md), so a cached answer is sent from here: after the request log, CORS and
the API-wide checks, with the route's own rate limit. Anything else (a postcode, another query,
a code not in the cache, a client over its limit) goes on to the route, which answers it as
always, 429 included.
"""

from __future__ import annotations

from starlette.types import Scope, Send

from libs.common.prerouting import PreRoutingAnswers
from libs.common.ratelimit import RateLimiter
from services.shipping_api.settings import ShippingSettings
from services.shipping_api.shipments.tracking_codes import normalise_tracking_code
from services.shipping_api.tracking.cache import TrackingCache
from services.shipping_api.tracking.endpoints import MAX_TYPED_LENGTH
from services.shipping_api.tracking.endpoints import router as tracking_router

PREFIX = tracking_router.prefix + "/"
# The metrics label an answer with its route's template, as if routed.
ROUTE = next(
    r for r in tracking_router.routes if getattr(r, "path", "") == PREFIX + "{tracking_code}"
)


class CachedTrackingAnswers(PreRoutingAnswers):
    prefix = PREFIX
    route = ROUTE

    async def answer(self, scope: Scope, body: bytes, send: Send) -> bool:
        state = scope["app"].state
        cache: TrackingCache | None = getattr(state, "tracking_cache", None)
        typed = scope["path"][len(PREFIX) :]
        code = normalise_tracking_code(typed) if len(typed) <= MAX_TYPED_LENGTH else None
        if cache is None or code is None or (answer := cache.get(code)) is None:
            return False
        settings: ShippingSettings = state.settings
        limiter: RateLimiter = state.rate_limiter
        request_state = scope.get("state") or {}
        client = request_state.get("client_ip") or (scope.get("client") or ("unknown",))[0]
        if await limiter.hit(settings.tracking_rate_limit, "tracking", client):
            return False  # the route counts nothing more and answers 429 with Retry-After
        await self.send_json(scope, send, answer)
        return True
