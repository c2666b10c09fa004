"""The in-process sliding window counter: what a client over its limit is told, and that the
wait it is told is enough."""

from __future__ import annotations

import os
import uuid

import pytest
from limits import parse

from libs.common.ratelimit import LocalWindows, RateLimiter
from tests.support.redis import redis_or_skip


class FakeClock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_allows_the_limit_then_refuses_with_a_wait_inside_the_window() -> None:
    clock = FakeClock()
    windows = LocalWindows(clock=clock)
    item = parse("3/minute")
    assert [windows.hit(item, ("k",)) for _ in range(3)] == [0, 0, 0]
    wait = windows.hit(item, ("k",))
    assert 1 <= wait <= 60
    # A refused hit is not counted: the wait does not grow by asking again.
    assert windows.hit(item, ("k",)) == wait


def test_the_previous_window_still_weighs_in_after_it_ends() -> None:
    clock = FakeClock(60 * 16_667 + 20.0)  # 20 s into a window (windows are 60 s, aligned)
    windows = LocalWindows(clock=clock)
    item = parse("4/minute")
    for _ in range(4):
        assert windows.hit(item, ("k",)) == 0
    clock.now += 40  # the very start of the next window: the previous one weighs fully
    assert windows.hit(item, ("k",)) > 0
    clock.now += 30  # half-way: the previous window weighs 2, so two more fit
    assert windows.hit(item, ("k",)) == 0
    assert windows.hit(item, ("k",)) == 0
    assert windows.hit(item, ("k",)) > 0


def test_waiting_the_time_it_says_is_enough() -> None:
    clock = FakeClock(1_000_005.0)
    windows = LocalWindows(clock=clock)
    item = parse("10/minute")
    for _ in range(10):
        windows.hit(item, ("k",))
    for _ in range(30):  # keep knocking every time the wait is over
        wait = windows.hit(item, ("k",))
        if wait:
            clock.now += wait
            assert windows.hit(item, ("k",)) == 0


def test_keys_and_limits_count_apart() -> None:
    windows = LocalWindows(clock=FakeClock())
    one, two = parse("1/minute"), parse("1/hour")
    assert windows.hit(one, ("a",)) == 0
    assert windows.hit(one, ("b",)) == 0
    assert windows.hit(two, ("a",)) == 0
    assert windows.hit(one, ("a",)) > 0
    assert windows.test(one, ("b",)) > 0
    windows.clear(one, ("a",))
    assert windows.hit(one, ("a",)) == 0


def test_memory_is_bounded_under_many_addresses() -> None:
    clock = FakeClock()
    windows = LocalWindows(max_keys=100, clock=clock)
    item = parse("5/minute")
    for n in range(1_000):
        windows.hit(item, (f"198.51.100.{n}",))
    assert len(windows._windows) <= 100
    # Recent clients keep their counts when the oldest are dropped.
    for _ in range(4):
        windows.hit(item, ("198.51.100.999",))
    assert windows.hit(item, ("198.51.100.999",)) > 0


REDIS_URL = os.environ.get("REDIS_TEST_URL", "redis://127.0.0.1:6379/15")


@pytest.mark.parametrize("shared", [False, True], ids=["memory", "redis"])
async def test_rate_limiter_answers_alike_in_memory_and_in_redis(shared: bool) -> None:
    if shared:
        await redis_or_skip(REDIS_URL)
    limiter = RateLimiter.from_url(REDIS_URL if shared else None, namespace=uuid.uuid4().hex)
    assert [await limiter.hit("2/minute", "client") for _ in range(2)] == [0, 0]
    assert await limiter.hit("2/minute", "client") > 0
    assert await limiter.is_limited("2/minute", "client") > 0
    assert await limiter.is_limited("2/minute", "other") == 0
    await limiter.clear("2/minute", "client")
    assert await limiter.hit("2/minute", "client") == 0
