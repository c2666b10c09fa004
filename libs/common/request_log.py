"""Storage of account holders' request-log entries: the table, the batching sink, the purge.

Entries are personal data (an IP address tied to an account), so each service keeps them in its
own ``request_log`` table where they can be exported, erased and expired like any other data.
Writes are batched by a background task: a slow or broken database never slows or fails a
request, and a full queue drops entries (counted and reported) rather than grow without bound.
While the database is unavailable (a restart, a failover) the task keeps its batch and retries,
so entries survive an outage as long as the queue has room; every entry carries its id from the
start, so a batch retried after an unanswered commit is never stored twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import Index, Integer, String, Table, bindparam, delete, func, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, declared_attr, mapped_column
from sqlalchemy.sql.dml import Insert

from libs.common.db import UTCDateTime, UUIDPrimaryKey, is_database_unavailable, utcnow, uuid7
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
        # Fresh Index objects per table. Export and erasure look entries up by account, the
        # export in keyset batches by id; the purge scans by time.
        return (
            Index("ix_request_log_account_id_id", "account_id", "id"),
            Index("ix_request_log_timestamp", "timestamp"),
            {"info": table_info(TableErasure.DELETE)},
        )


_COLUMNS = (
    "ip",
    "timestamp",
    "duration_ms",
    "method",
    "host",
    "port",
    "path",
    "status",
    "request_size",
    "response_size",
    "request_id",
    "service",
)


def _row(record: dict[str, Any]) -> dict[str, Any]:
    row = {column: record[column] for column in _COLUMNS}
    row["id"] = uuid7()
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
        retry_max_seconds: float = 5.0,
        stop_timeout_seconds: float = 5.0,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.model = model
        self.batch_size = batch_size
        self.flush_seconds = flush_seconds
        self.max_attempts = max_attempts
        """Tries of a batch the database refuses for another reason than being unavailable."""
        self.retry_max_seconds = retry_max_seconds
        self.stop_timeout_seconds = stop_timeout_seconds
        """How long shutdown may keep trying to store what is left before counting it lost."""
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=max_queue)
        self.dropped = 0
        self.written = 0
        self._unnest_statements: dict[tuple[str, ...], Insert] = {}
        self._held: list[dict[str, Any]] = []
        """The batch being written: taken off the queue, kept until it is stored."""
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    @property
    def pending(self) -> int:
        """Entries not yet stored (queued or in the batch being retried)."""
        return self.queue.qsize() + len(self._held)

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
        """Write everything queued now, ``max_attempts`` tries per batch; returns the number of
        entries written (a batch that still fails is dropped and counted)."""
        total = 0
        while self.pending:
            batch = self._take_batch()
            for attempt in range(1, self.max_attempts + 1):
                error = await self._write(batch)
                if error is None:
                    total += len(batch)
                    break
                self._log_failure(error, attempt, len(batch))
            else:
                self._drop(batch, "request_log_batch_dropped")
            self._held = []
        return total

    def _take_batch(self) -> list[dict[str, Any]]:
        if not self._held:
            while len(self._held) < self.batch_size and not self.queue.empty():
                self._held.append(self.queue.get_nowait())
        return self._held

    async def _run(self) -> None:
        while not self._stopping.is_set():
            await self._pause(self.flush_seconds)
            await self._write_until_stopped()
        await self._write_before_exit()

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)

    async def _write_until_stopped(self) -> None:
        """Store the queue batch by batch, until a batch is not full: what arrives meanwhile
        waits for the next tick, so a busy service writes a few full batches a second, not a
        transaction for every handful of requests that came in during the last write. While the
        database is unavailable the batch is kept and retried with backoff (the queue's bound
        caps the memory an outage can take)."""
        attempt = 0
        while self.pending and not self._stopping.is_set():
            batch = self._take_batch()
            error = await self._write(batch)
            attempt = self._settle(batch, error, attempt)
            if attempt:
                await self._pause(min(0.5 * 2 ** (attempt - 1), self.retry_max_seconds))
            elif len(batch) < self.batch_size:
                return

    async def _write_before_exit(self) -> None:
        """Shutdown: keep trying for a bounded time, then count what could not be stored."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.stop_timeout_seconds
        attempt = 0
        while self.pending:
            batch = self._take_batch()
            try:
                # A connection attempt to a server that does not answer must not outlast the
                # bound either (a batch cut off mid-commit is safe: ids make the retry a no-op).
                async with asyncio.timeout(max(deadline - loop.time(), 0.1)):
                    error = await self._write(batch)
            except TimeoutError:
                self._lose_the_rest()
                return
            attempt = self._settle(batch, error, attempt)
            if error is None or not attempt or not is_database_unavailable(error):
                continue  # done with, or refused: no point in waiting before the next try
            if loop.time() + 0.5 > deadline:
                self._lose_the_rest()
                return
            await asyncio.sleep(0.5)

    def _settle(self, batch: list[dict[str, Any]], error: Exception | None, attempt: int) -> int:
        """After one write of ``batch``: the attempt count to go on with, 0 when the batch is
        done with — stored, or refused too often by a database that is there (retrying will
        not help)."""
        if error is None:
            self._held = []
            return 0
        attempt += 1
        self._log_failure(error, attempt, len(batch))
        if not is_database_unavailable(error) and attempt >= self.max_attempts:
            self._drop(batch, "request_log_batch_dropped")
            self._held = []
            return 0
        return attempt

    def _lose_the_rest(self) -> None:
        lost = self.pending
        self.dropped += lost
        self._held = []
        while not self.queue.empty():
            self.queue.get_nowait()
        log.error("request_log_lost_on_shutdown", entries=lost, dropped=self.dropped)

    async def _write(self, batch: list[dict[str, Any]]) -> Exception | None:
        """Insert ``batch`` in one transaction; the error when it failed."""
        if not batch:
            return None
        try:
            async with self.sessionmaker() as session:
                await self._insert(session, batch)
                await session.commit()
        except Exception as exc:
            return exc
        self.written += len(batch)
        return None

    async def _insert(self, session: AsyncSession, batch: list[dict[str, Any]]) -> None:
        # A commit whose answer was lost may have stored the batch: the retry skips the rows
        # that exist (same ids) instead of storing them twice.
        dialect = session.get_bind().dialect.name
        if dialect == "postgresql":
            # One row of column arrays: asyncpg encodes each array in one go, where a
            # multi-row VALUES had SQLAlchemy render a parameter per field.
            columns = {name: [row[name] for row in batch] for name in batch[0]}
            await session.execute(self._unnest_insert(tuple(columns)), columns)
        elif dialect == "sqlite":
            statement = sqlite.insert(self.model).on_conflict_do_nothing(index_elements=["id"])
            await session.execute(statement, batch)
        else:
            await session.execute(insert(self.model), batch)

    def _unnest_insert(self, names: tuple[str, ...]) -> Insert:
        """``INSERT ... SELECT unnest(...)`` of one array per column, built once per set of
        columns."""
        statement = self._unnest_statements.get(names)
        if statement is None:
            table: Table = self.model.__table__  # type: ignore[attr-defined]
            arrays = [
                func.unnest(bindparam(name, type_=postgresql.ARRAY(table.c[name].type)))
                for name in names
            ]
            statement = (
                postgresql.insert(table)
                .from_select(list(names), select(*arrays))
                .on_conflict_do_nothing(index_elements=["id"])
            )
            self._unnest_statements[names] = statement
        return statement

    def _log_failure(self, error: Exception, attempt: int, entries: int) -> None:
        log.error(
            "request_log_write_failed",
            attempt=attempt,
            entries=entries,
            error=type(error).__name__,
            database_unavailable=is_database_unavailable(error),
        )

    def _drop(self, batch: list[dict[str, Any]], event: str) -> None:
        self.dropped += len(batch)
        log.error(event, entries=len(batch), dropped=self.dropped)


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
