"""Rate limits on top of the ``limits`` library: in memory for one process, in Redis (when
``REDIS_URL`` is set) so that every process of a service shares the same counters."""

from __future__ import annotations

import math
import time

from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter

from libs.common.errors import TooManyRequests


class RateLimiter:
    def __init__(self, storage: Storage, *, namespace: str) -> None:
        self.storage = storage
        self.namespace = namespace
        self.strategy = MovingWindowRateLimiter(storage)

    @classmethod
    def from_url(cls, redis_url: str | None, *, namespace: str) -> RateLimiter:
        if redis_url:
            url = redis_url if redis_url.startswith("async+") else f"async+{redis_url}"
            return cls(RedisStorage(url), namespace=namespace)
        return cls(MemoryStorage(), namespace=namespace)

    async def hit(self, limit: str | RateLimitItem, *identifiers: str, cost: int = 1) -> int:
        """Count one hit; return 0 when allowed, else the seconds to wait."""
        item = parse(limit) if isinstance(limit, str) else limit
        keys = (self.namespace, *identifiers)
        if await self.strategy.hit(item, *keys, cost=cost):
            return 0
        return await self.retry_after(item, *identifiers)

    async def retry_after(self, limit: str | RateLimitItem, *identifiers: str) -> int:
        item = parse(limit) if isinstance(limit, str) else limit
        stats = await self.strategy.get_window_stats(item, self.namespace, *identifiers)
        return max(1, math.ceil(stats.reset_time - time.time()))

    async def is_limited(self, limit: str | RateLimitItem, *identifiers: str) -> int:
        """Without counting: 0 when a hit would be allowed, else the seconds to wait."""
        item = parse(limit) if isinstance(limit, str) else limit
        if await self.strategy.test(item, self.namespace, *identifiers):
            return 0
        return await self.retry_after(item, *identifiers)

    async def enforce(self, limit: str | RateLimitItem, *identifiers: str) -> None:
        """Count one hit or raise 429 with ``Retry-After``."""
        wait = await self.hit(limit, *identifiers)
        if wait:
            raise TooManyRequests(wait, "too many requests; try again later")

    async def clear(self, limit: str | RateLimitItem, *identifiers: str) -> None:
        item = parse(limit) if isinstance(limit, str) else limit
        await self.strategy.clear(item, self.namespace, *identifiers)
