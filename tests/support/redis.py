"""Tests of shared counters need the Redis server CI runs; elsewhere they are skipped."""

from __future__ import annotations

import pytest
import redis.asyncio as redis


async def redis_or_skip(url: str) -> None:
    client = redis.Redis.from_url(url, socket_connect_timeout=1)
    try:
        await client.ping()
    except redis.RedisError:
        pytest.skip(f"Redis is not running at {url}")
    finally:
        await client.aclose()
