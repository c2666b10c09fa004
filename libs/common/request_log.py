"""Storage of account holders' request-log entries: the table, the batching sink, the purge.

Entries are personal data (an IP address tied to an account), so each service keeps them in its
own ``request_log`` table where they can be exported, erased and expired like any other data.
Writes are batched by a background task: a slow or broken database never slows or fails a
request, and a full queue drops entries (counted and reported) rather than grow without bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import Index, Integer, String, delete, insert, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, declared_attr, mapped_column

from libs.common.db import UTCDateTime, UUIDPrimaryKey, utcnow
from libs.common.pii import PiiCategory, TableErasure, pii, table_info

log = structlog.get_logger("request_log")


class RequestLogMixin(UUIDPrimaryKey):
    """Columns of a service's ``request_log`` table (the privacy statement's list)."""

    ip: Mapped[str | None] = mapped_column(String(45), info=pii(PiiCategory.NETWORK))
    timestamp: Mapped[datetime] = mapped_column(
        UTCDateTime(), nullable=False, info=pii(PiiCategory.USAGE)
    )
    duration_ms: Mapped[float] = mapped_column(nullable=False)
    method: Mapped[str] = mapped_column(String(16), nullable=False)
    host: Mapped[str | None] = mapped_column(String(255))
    port: Mapped[int | None] = mapped_column(Integer)
    path: Mapped[str] = mapped_column(String(2048), nullable=False, info=pii(PiiCategory.USAGE))
    status: Mapped[int] = mapped_column(Integer, nullable=False)
    request_size: Mapped[int] = mapped_column(Integer, nullable=False)
    response_size: Mapped[int] = mapped_column(Integer, nullable=False)
    request_id: Mapped[str] = mapped_column(String(128), nullable=False)
    service: Mapped[str] = mapped_column(String(32), nullable=False)
    account_id: Mapped[uuid.UUID] = mapped_column(
        nullable=False, info=pii(PiiCategory.ACCOUNT_IDENTIFIER)
    )

    @declared_attr.directive
    def __table_args__(cls) -> tuple[Any, ...]:
        # Fresh Index objects per table. Export and erasure look entries up by account; the
        # purge scans by time.
        return (
            Index("ix_request_log_account_id_timestamp", "account_id", "timestamp"),
            Index("ix_request_log_timestamp", "timestamp"),
            {"info": table_info(TableErasure.DELETE)},
        )


def _row(record: dict[str, Any]) -> dict[str, Any]:
    row = dict(record)
    row["account_id"] = uuid.UUID(str(record["account_id"]))
    row["path"] = str(record["path"])[:2048]
    return row


class RequestLogSink:
    """Collects request-log entries in memory and writes them to the database in batches."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        model: type[RequestLogMixin],
        *,
        batch_size: int = 500,
        flush_seconds: float = 1.0,
        max_queue: int = 50_000,
        max_attempts: int = 3,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.model = model
        self.batch_size = batch_size
        self.flush_seconds = flush_seconds
        self.max_attempts = max_attempts
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=max_queue)
        self.dropped = 0
        self.written = 0
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    def submit(self, record: dict[str, Any]) -> None:
        try:
            self.queue.put_nowait(_row(record))
        except asyncio.QueueFull:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                log.warning("request_log_queue_full", dropped=self.dropped)
        except (ValueError, TypeError, KeyError):
            self.dropped += 1
            log.warning("request_log_bad_record", request_id=record.get("request_id"))

    async def start(self) -> None:
        if self._task is None:
            self._stopping.clear()
            self._task = asyncio.create_task(self._run(), name="request-log-sink")

    async def stop(self) -> None:
        """Stop the background task and write what is still queued (graceful shutdown)."""
        if self._task is None:
            return
        self._stopping.set()
        await self._task
        self._task = None

    async def flush(self) -> int:
        """Write everything queued now; returns the number of entries written."""
        total = 0
        while not self.queue.empty():
            total += await self._write(self._take_batch())
        return total

    def _take_batch(self) -> list[dict[str, Any]]:
        batch: list[dict[str, Any]] = []
        while len(batch) < self.batch_size and not self.queue.empty():
            batch.append(self.queue.get_nowait())
        return batch

    async def _run(self) -> None:
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=self.flush_seconds)
            await self.flush()
        await self.flush()

    async def _write(self, batch: list[dict[str, Any]]) -> int:
        if not batch:
            return 0
        for attempt in range(1, self.max_attempts + 1):
            try:
                async with self.sessionmaker() as session:
                    await session.execute(insert(self.model), batch)
                    await session.commit()
            except Exception as exc:
                log.error(
                    "request_log_write_failed",
                    attempt=attempt,
                    entries=len(batch),
                    error=type(exc).__name__,
                )
                if attempt < self.max_attempts and not self._stopping.is_set():
                    await asyncio.sleep(min(2.0**attempt, 10.0))
            else:
                self.written += len(batch)
                return len(batch)
        self.dropped += len(batch)
        return 0


async def purge_expired_request_log(
    sessionmaker: async_sessionmaker[AsyncSession],
    model: type[RequestLogMixin],
    *,
    retention_days: int,
    now: datetime | None = None,
    batch_size: int = 10_000,
) -> int:
    """Delete entries older than the retention period, in short batches (no long locks)."""
    cutoff = (now or utcnow()) - timedelta(days=retention_days)
    total = 0
    while True:
        async with sessionmaker() as session:
            ids = select(model.id).where(model.timestamp < cutoff).limit(batch_size)
            result = await session.execute(delete(model).where(model.id.in_(ids.scalar_subquery())))
            await session.commit()
        deleted = int(getattr(result, "rowcount", 0) or 0)
        total += deleted
        if deleted < batch_size:
            return total
