"""Rate limits as sliding window counters: in process memory for one process, in Redis (when
``REDIS_URL`` is set, through the ``limits`` library) so that every process of a service shares
the same counters.

The sliding window counter keeps two counters per key, O(1) per hit whatever the limit: the
current fixed window's count plus the previous window's, weighted by how much of it still lies
inside the sliding window. In memory the counters are a dict lookup; ``limits``' memory storage
costs about ten times as much per hit (six layers of async wrappers), which the busiest public
routes pay once or twice per request (docs/decisions/0701-performance-budget.md).
"""

from __future__ import annotations

import functools
import math
import time
from typing import Any

from fastapi import Request
from limits import RateLimitItem, parse
from limits.aio.storage import RedisStorage, Storage
from limits.aio.strategies import SlidingWindowCounterRateLimiter

from libs.common.auth import remember_principal
from libs.common.errors import DomainError, TooManyRequests
from libs.common.logging import request_client_ip


@functools.lru_cache(maxsize=256)
def _item(limit: str) -> RateLimitItem:
    # Parsing "60/minute" costs more than counting a hit; settings hold a handful of limits.
    return parse(limit)


class LocalWindows:
    """Sliding window counters in this process's memory.

    Per key: the start of the current fixed window, its count and the previous window's count.
    At most ``max_keys`` keys are kept; beyond that, keys idle for two windows go first, then
    the longest-known ones (a client must rotate through that many addresses to profit).
    """

    def __init__(self, *, max_keys: int = 100_000, clock: Any = time.monotonic) -> None:
        self.max_keys = max_keys
        self.clock = clock
        self._windows: dict[tuple[str, ...], list[float]] = {}

    def _window(self, item: RateLimitItem, key: tuple[str, ...], now: float) -> list[float]:
        # Each limit counts apart, even for the same identifiers.
        period = float(item.get_expiry())
        key = (*key, str(item.amount), str(period))
        start = now - now % period
        window = self._windows.get(key)
        if window is None:
            if len(self._windows) >= self.max_keys:
                self._evict(now, period)
            window = self._windows[key] = [start, 0.0, 0.0]
        elif window[0] != start:
            # One window on, the current count becomes the previous one; further, both lapse.
            window[2] = window[1] if window[0] == start - period else 0.0
            window[0], window[1] = start, 0.0
        return window

    @staticmethod
    def _weighted(window: list[float], period: float, now: float) -> float:
        return window[2] * (period - (now - window[0])) / period + window[1]

    def hit(self, item: RateLimitItem, key: tuple[str, ...], cost: int = 1) -> int:
        """Count ``cost`` hits; 0 when allowed, else the seconds to wait (nothing counted)."""
        wait, window = self._check(item, key, cost)
        if not wait:
            window[1] += cost
        return wait

    def test(self, item: RateLimitItem, key: tuple[str, ...]) -> int:
        return self._check(item, key, 1)[0]

    def _check(
        self, item: RateLimitItem, key: tuple[str, ...], cost: int
    ) -> tuple[int, list[float]]:
        """(0, or the seconds to wait before ``cost`` more hits fit; the key's window)."""
        period, now = float(item.get_expiry()), self.clock()
        window = self._window(item, key, now)
        if self._weighted(window, period, now) + cost > item.amount:
            return self._wait(window, item.amount, period, now), window
        return 0, window

    def clear(self, item: RateLimitItem, key: tuple[str, ...]) -> None:
        self._windows.pop((*key, str(item.amount), str(float(item.get_expiry()))), None)

    @staticmethod
    def _wait(window: list[float], amount: int, period: float, now: float) -> int:
        """Seconds until one more hit fits: until the previous window's weight has fallen far
        enough, or, when the current window alone is full, into the next window, where this one
        is the previous and its weight must fall likewise."""
        left_in_window = window[0] + period - now
        if window[1] + 1 > amount:
            return max(1, math.ceil(left_in_window + period * (1 - (amount - 1) / window[1])))
        if window[2] == 0:
            return 1
        room = amount - 1 - window[1]
        return max(1, math.ceil(left_in_window - room * period / window[2]))

    def _evict(self, now: float, period: float) -> None:
        stale = [k for k, w in self._windows.items() if w[0] < now - 2 * period]
        for key in stale:
            del self._windows[key]
        if len(self._windows) >= self.max_keys:
            for key in list(self._windows)[: self.max_keys // 2]:
                del self._windows[key]


class RateLimiter:
    def __init__(self, storage: Storage | None, *, namespace: str) -> None:
        """``storage`` is a shared ``limits`` storage (Redis), or None for this process."""
        self.storage = storage
        self.namespace = namespace
        self.strategy = SlidingWindowCounterRateLimiter(storage) if storage is not None else None
        self.local = LocalWindows()

    @classmethod
    def from_url(cls, redis_url: str | None, *, namespace: str) -> RateLimiter:
        if redis_url:
            url = redis_url if redis_url.startswith("async+") else f"async+{redis_url}"
            return cls(RedisStorage(url), namespace=namespace)
        return cls(None, namespace=namespace)

    async def hit(self, limit: str | RateLimitItem, *identifiers: str, cost: int = 1) -> int:
        """Count one hit; return 0 when allowed, else the seconds to wait."""
        item = _item(limit) if isinstance(limit, str) else limit
        if self.strategy is None:
            return self.local.hit(item, (self.namespace, *identifiers), cost)
        if await self.strategy.hit(item, self.namespace, *identifiers, cost=cost):
            return 0
        return await self.retry_after(item, *identifiers)

    async def retry_after(self, limit: str | RateLimitItem, *identifiers: str) -> int:
        item = _item(limit) if isinstance(limit, str) else limit
        if self.strategy is None:
            return self.local.test(item, (self.namespace, *identifiers)) or 1
        stats = await self.strategy.get_window_stats(item, self.namespace, *identifiers)
        return max(1, math.ceil(stats.reset_time - time.time()))

    async def is_limited(self, limit: str | RateLimitItem, *identifiers: str) -> int:
        """Without counting: 0 when a hit would be allowed, else the seconds to wait."""
        item = _item(limit) if isinstance(limit, str) else limit
        if self.strategy is None:
            return self.local.test(item, (self.namespace, *identifiers))
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
        if self.strategy is None:
            self.local.clear(item, (self.namespace, *identifiers))
            return
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
