"""Request-log entries of account holders reach the service's own table, and expire."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from libs.common.request_log import RequestLogSink, purge_expired_request_log
from services.shipping_api.models import RequestLog
from services.shipping_api.settings import ShippingSettings
from tests.support.db import rolled_back

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def record(
    account_id: uuid.UUID, *, at: datetime = NOW, path: str = "/v1/shipments"
) -> dict[str, Any]:
    return {
        "ip": "198.51.100.23",
        "timestamp": at,
        "duration_ms": 1.5,
        "method": "GET",
        "host": "api.parcelpro.nl",
        "port": 443,
        "path": path,
        "status": 200,
        "request_size": 0,
        "response_size": 42,
        "request_id": uuid.uuid4().hex,
        "service": "shipping",
        "account_id": str(account_id),
    }


async def test_sink_writes_batches_to_the_request_log_table(
    shipping_settings: ShippingSettings,
) -> None:
    account = uuid.uuid4()
    async with rolled_back(shipping_settings) as database:
        sink = RequestLogSink(database.sessionmaker, RequestLog, batch_size=2)
        for i in range(5):
            sink.submit(record(account, path=f"/v1/shipments/{i}"))
        assert await sink.flush() == 5
        async with database.session() as session:
            rows = (
                await session.scalars(
                    select(RequestLog)
                    .where(RequestLog.account_id == account)
                    .order_by(RequestLog.path)
                )
            ).all()
        assert [row.path for row in rows] == [f"/v1/shipments/{i}" for i in range(5)]
        assert rows[0].ip == "198.51.100.23"
        assert rows[0].timestamp == NOW
        assert sink.written == 5


class BrokenSessions:
    """A sessionmaker whose database is gone."""

    def __call__(self) -> AsyncSession:
        raise ConnectionRefusedError("database down")


async def test_sink_survives_a_broken_database_and_counts_the_loss() -> None:
    sink = RequestLogSink(BrokenSessions(), RequestLog, max_attempts=1)  # type: ignore[arg-type]
    sink.submit(record(uuid.uuid4()))
    assert await sink.flush() == 0
    assert sink.dropped == 1


async def test_full_queue_drops_instead_of_growing(shipping_settings: ShippingSettings) -> None:
    sink = RequestLogSink(async_sessionmaker(), RequestLog, max_queue=3)
    for _ in range(5):
        sink.submit(record(uuid.uuid4()))
    assert sink.queue.qsize() == 3
    assert sink.dropped == 2


async def test_stop_flushes_what_is_queued(shipping_settings: ShippingSettings) -> None:
    account = uuid.uuid4()
    async with rolled_back(shipping_settings) as database:
        sink = RequestLogSink(database.sessionmaker, RequestLog, flush_seconds=60)
        await sink.start()
        sink.submit(record(account))
        await sink.stop()
        async with database.session() as session:
            count = await session.scalar(
                select(func.count()).select_from(RequestLog).where(RequestLog.account_id == account)
            )
        assert count == 1


class SlowStore(RequestLogSink):
    """A sink whose every write takes 20 ms, as a commit on a busy database may; it records the
    size of each batch instead of storing it."""

    def __init__(self) -> None:
        super().__init__(async_sessionmaker(), RequestLog, flush_seconds=0.2)
        self.batches: list[int] = []

    async def _write(self, batch: list[dict[str, Any]]) -> Exception | None:
        await asyncio.sleep(0.02)
        self.batches.append(len(batch))
        self.written += len(batch)
        return None


async def test_a_busy_service_writes_a_batch_a_tick_not_one_per_write() -> None:
    """Entries that come in while a batch is written wait for the next tick: a steady stream
    of requests must not turn into a transaction for every few of them."""
    sink = SlowStore()
    await sink.start()
    submitted = 0
    loop = asyncio.get_running_loop()
    until = loop.time() + 1.0
    while loop.time() < until:
        sink.submit(record(uuid.uuid4()))
        submitted += 1
        await asyncio.sleep(0.001)
    await sink.stop()
    assert sum(sink.batches) == submitted
    # About five ticks in that second, and the rest written on stop; chasing the arrivals
    # would have written every 20 ms, some fifty batches.
    assert len(sink.batches) <= 8, sink.batches


async def test_purge_removes_only_entries_past_retention(
    shipping_settings: ShippingSettings,
) -> None:
    account = uuid.uuid4()
    async with rolled_back(shipping_settings) as database:
        sink = RequestLogSink(database.sessionmaker, RequestLog)
        sink.submit(record(account, at=NOW - timedelta(days=91), path="/old"))
        sink.submit(record(account, at=NOW - timedelta(days=89), path="/recent"))
        await sink.flush()
        deleted = await purge_expired_request_log(
            database.sessionmaker, RequestLog, retention_days=90, now=NOW, batch_size=1
        )
        assert deleted == 1
        async with database.session() as session:
            paths = (
                await session.scalars(
                    select(RequestLog.path).where(RequestLog.account_id == account)
                )
            ).all()
        assert paths == ["/recent"]
