"""The request-log storage through a database outage: entries queued while the database is
away are stored once it is back, a batch whose commit answer was lost is not stored twice, and
shutdown gives up after a bounded time (even when the database never answers), counting what it
could not store."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from libs.common.request_log import RequestLogSink
from services.shipping_api.models import RequestLog
from services.shipping_api.settings import ShippingSettings
from tests.support.db import rolled_back


def entry(account_id: uuid.UUID) -> dict[str, Any]:
    return {
        "ip": "198.51.100.23",
        "timestamp": datetime.now(UTC),
        "duration_ms": 2.5,
        "method": "GET",
        "host": "api.parcelpro.nl",
        "port": 443,
        "path": "/v1/shipments",
        "status": 200,
        "request_size": 0,
        "response_size": 42,
        "request_id": uuid.uuid4().hex,
        "service": "shipping",
        "account_id": str(account_id),
    }


def unavailable(statement: str) -> OperationalError:
    return OperationalError(statement, None, ConnectionRefusedError("the database is restarting"))


class FlakyDatabase:
    """Sessions of a database that is away for the first ``outage`` attempts, and whose first
    ``lost_answers`` commits succeed without the answer reaching us."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        *,
        outage: int = 0,
        lost_answers: int = 0,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.outage = outage
        self.lost_answers = lost_answers
        self.attempts = 0

    def __call__(self) -> AsyncSession:
        self.attempts += 1
        if self.attempts <= self.outage:
            raise unavailable("BEGIN")
        session = self.sessionmaker()
        if self.lost_answers > 0:
            self.lost_answers -= 1
            commit = session.commit

            async def commit_and_lose_the_answer() -> None:
                await commit()
                raise unavailable("COMMIT")

            session.commit = commit_and_lose_the_answer  # type: ignore[method-assign]
        return session


async def stored(sessionmaker: Callable[[], AsyncSession], account_id: uuid.UUID) -> int:
    async with sessionmaker() as session:
        count = await session.scalar(
            select(func.count()).select_from(RequestLog).where(RequestLog.account_id == account_id)
        )
    return int(count or 0)


async def wait_until(predicate: Callable[[], bool], *, within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not predicate():
        assert time.monotonic() < deadline, "not reached in time"
        await asyncio.sleep(0.01)


async def test_entries_queued_during_an_outage_are_stored_when_the_database_is_back(
    shipping_settings: ShippingSettings,
) -> None:
    account_id = uuid.uuid4()
    async with rolled_back(shipping_settings) as database:
        flaky = FlakyDatabase(database.sessionmaker, outage=6)
        sink = RequestLogSink(
            flaky,  # type: ignore[arg-type]
            RequestLog,
            flush_seconds=0.01,
            retry_max_seconds=0.02,
        )
        await sink.start()
        try:
            for _ in range(3):
                sink.submit(entry(account_id))
            await wait_until(lambda: sink.written == 3)
        finally:
            await sink.stop()
        assert flaky.attempts > 6
        assert sink.dropped == 0
        assert await stored(database.sessionmaker, account_id) == 3


async def test_a_batch_whose_commit_answer_was_lost_is_stored_once(
    shipping_settings: ShippingSettings,
) -> None:
    account_id = uuid.uuid4()
    async with rolled_back(shipping_settings) as database:
        flaky = FlakyDatabase(database.sessionmaker, lost_answers=1)
        sink = RequestLogSink(
            flaky,  # type: ignore[arg-type]
            RequestLog,
            flush_seconds=0.01,
            retry_max_seconds=0.02,
        )
        await sink.start()
        try:
            for _ in range(4):
                sink.submit(entry(account_id))
            await wait_until(lambda: sink.written == 4 and flaky.attempts >= 2)
        finally:
            await sink.stop()
        assert await stored(database.sessionmaker, account_id) == 4


async def test_shutdown_stops_trying_after_its_time_and_counts_what_was_lost(
    shipping_settings: ShippingSettings,
) -> None:
    async with rolled_back(shipping_settings) as database:
        flaky = FlakyDatabase(database.sessionmaker, outage=1_000_000)
        sink = RequestLogSink(
            flaky,  # type: ignore[arg-type]
            RequestLog,
            flush_seconds=60,
            stop_timeout_seconds=0.6,
        )
        await sink.start()
        for _ in range(5):
            sink.submit(entry(uuid.uuid4()))
        started = time.monotonic()
        await sink.stop()
        assert time.monotonic() - started < 2
        assert flaky.attempts >= 2  # it did try again before giving up
        assert (sink.written, sink.dropped, sink.pending) == (0, 5, 0)


class SilentDatabase:
    """Sessions of a server that accepts the connection and then never answers."""

    def __call__(self) -> AsyncSession:
        session = AsyncSession()

        async def never_answers(*_: Any, **__: Any) -> None:
            await asyncio.sleep(3600)

        session.execute = never_answers  # type: ignore[method-assign]
        return session


async def test_shutdown_is_bounded_even_when_the_database_never_answers() -> None:
    sink = RequestLogSink(
        SilentDatabase(),  # type: ignore[arg-type]
        RequestLog,
        flush_seconds=60,
        stop_timeout_seconds=0.5,
    )
    await sink.start()
    for _ in range(3):
        sink.submit(entry(uuid.uuid4()))
    started = time.monotonic()
    await sink.stop()
    assert time.monotonic() - started < 1.5
    assert (sink.written, sink.dropped, sink.pending) == (0, 3, 0)
