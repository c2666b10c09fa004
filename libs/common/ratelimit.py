"""Rate limits on top of the ``limits`` library: in memory for one process, in Redis (when
``REDIS_URL`` is set) so that every process of a service shares the same counters.

The strategy is the sliding window counter: two counters per key, O(1) per hit whatever the
limit. (The moving window keeps one timestamp per hit and, in memory, prepends to a list:
with the API-wide 6000/minute per account that was a measurable cost on every request.)"""

from __future__ import annotations

import functools
import math
import time
from typing import Any

from fastapi import Request
from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import SlidingWindowCounterRateLimiter

from libs.common.auth import remember_principal
from libs.common.errors import DomainError, TooManyRequests
from libs.common.logging import request_client_ip


@functools.lru_cache(maxsize=256)
def _item(limit: str) -> RateLimitItem:
    # Parsing "60/minute" costs more than counting a hit; settings hold a handful of limits.
    return parse(limit)


class RateLimiter:
    def __init__(self, storage: Storage, *, namespace: str) -> None:
        self.storage = storage
        self.namespace = namespace
        self.strategy = SlidingWindowCounterRateLimiter(storage)

    @classmethod
    def from_url(cls, redis_url: str | None, *, namespace: str) -> RateLimiter:
        if redis_url:
            url = redis_url if redis_url.startswith("async+") else f"async+{redis_url}"
            return cls(RedisStorage(url), namespace=namespace)
        return cls(MemoryStorage(), namespace=namespace)

    async def hit(self, limit: str | RateLimitItem, *identifiers: str, cost: int = 1) -> int:
        """Count one hit; return 0 when allowed, else the seconds to wait."""
        item = _item(limit) if isinstance(limit, str) else limit
        keys = (self.namespace, *identifiers)
        if await self.strategy.hit(item, *keys, cost=cost):
            return 0
        return await self.retry_after(item, *identifiers)

    async def retry_after(self, limit: str | RateLimitItem, *identifiers: str) -> int:
        item = _item(limit) if isinstance(limit, str) else limit
        stats = await self.strategy.get_window_stats(item, self.namespace, *identifiers)
        return max(1, math.ceil(stats.reset_time - time.time()))

    async def is_limited(self, limit: str | RateLimitItem, *identifiers: str) -> int:
        """Without counting: 0 when a hit would be allowed, else the seconds to wait."""
        item = _item(limit) if isinstance(limit, str) else limit
        if await self.strategy.test(item, self.namespace, *identifiers):
            return 0
        return await self.retry_after(item, *identifiers)

    async def enforce(self, limit: str | RateLimitItem, *identifiers: str) -> None:
        """Count one hit or raise 429 with ``Retry-After``."""
        wait = await self.hit(limit, *identifiers)
        if wait:
            raise TooManyRequests(wait, "too many requests; try again later")

    async def clear(self, limit: str | RateLimitItem, *identifiers: str) -> None:
        item = _item(limit) if isinstance(limit, str) else limit
        await self.strategy.clear(item, self.namespace, *identifiers)


LIMITED_PREFIXES = ("/v1/", "/.well-known/")
"""The public API; health, metrics, docs and service-to-service routes are not counted."""


async def enforce_api_rate_limit(request: Request) -> None:
    """Every request to the public API counts against its account (or staff member) when it
    carries a valid credential, else against its client address (OWASP API4): ``429`` with
    ``Retry-After`` beyond the settings' ``rate_limit_per_account`` / ``rate_limit_per_ip``.

    The principal found here is kept for the route's own authentication, which still decides
    whether the credential is needed and good enough.
    """
    if not request.scope["path"].startswith(LIMITED_PREFIXES):
        return
    app: Any = request.app
    settings = app.state.settings
    limiter: RateLimiter = app.state.rate_limiter
    subject = await _principal_key(request)
    if subject is not None:
        await limiter.enforce(settings.rate_limit_per_account, "api", subject)
        return
    await limiter.enforce(settings.rate_limit_per_ip, "api-ip", request_client_ip(request))


async def _principal_key(request: Request) -> str | None:
    scheme, _, credential = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not credential:
        return None
    try:
        principal = await remember_principal(request, credential.strip())
    except DomainError:
        # Invalid, expired or uncheckable: the route answers for that; count the address.
        return None
    if principal.account_id is not None:
        return f"account:{principal.account_id}"
    if principal.is_staff:
        return f"staff:{principal.subject}"
    return None
