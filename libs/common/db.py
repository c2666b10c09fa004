"""Async database access shared by the services: engine, sessions, column types and mixins.

PostgreSQL (asyncpg) in production, each service in its own schema; SQLite (aiosqlite) as the
embedded default, one file per service. Primary keys are UUIDv7 (time-ordered, so keyset
pagination and index locality come for free); timestamps are always timezone-aware UTC.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

import stamina
import uuid_utils.compat as uuid_compat
from fastapi import Depends, Request
from sqlalchemy import (
    JSON,
    ColumnElement,
    MetaData,
    Row,
    Select,
    Uuid,
    any_,
    bindparam,
    event,
)
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import Mapped, QueryableAttribute, mapped_column
from sqlalchemy.pool import ConnectionPoolEntry
from sqlalchemy.types import DateTime, TypeDecorator

NAMING_CONVENTION: dict[str, str] = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def new_metadata() -> MetaData:
    return MetaData(naming_convention=NAMING_CONVENTION)


def uuid7() -> uuid.UUID:
    """A new UUIDv7: random, but ordered by creation time."""
    return uuid_compat.uuid7()


def utcnow() -> datetime:
    return datetime.now(UTC)


def among(
    session: AsyncSession,
    column: ColumnElement[Any] | QueryableAttribute[Any],
    ids: Sequence[uuid.UUID],
) -> ColumnElement[bool]:
    """``column`` is one of ``ids``. On PostgreSQL the ids travel as one ``uuid[]`` parameter:
    an IN list of a thousand parameters cost more Python time to render per statement than the
    statement took (decision 0703); elsewhere an IN list."""
    if session.get_bind().dialect.name == "postgresql":
        return column == any_(bindparam(None, list(ids), type_=ARRAY(column.type)))
    return column.in_(ids)


async def stream_batches(
    connection: AsyncConnection, statement: Select[Any], size: int
) -> AsyncIterator[Sequence[Row[Any]]]:
    """The rows of ``statement``, ``size`` at a time, through one server-side cursor: one
    statement and at most one sort however many rows (keyset batches run one statement per
    batch, and with a bitmap scan, as the planner picks on fresh statistics, sort every
    remaining row again each time). Core rows, not ORM objects nor the ORM's result machinery:
    for reads that only pass rows on, such as access exports."""
    result = await connection.stream(statement.execution_options(yield_per=size))
    async for rows in result.partitions(size):
        yield rows


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that only accepts and only returns timezone-aware UTC datetimes.

    PostgreSQL stores ``timestamptz``; SQLite has no time zones, so values are stored as UTC
    and marked UTC again when read.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use timezone-aware UTC datetimes")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


JSONType = JSON().with_variant(JSONB(), "postgresql")

TYPE_ANNOTATION_MAP: dict[Any, Any] = {
    datetime: UTCDateTime(),
    uuid.UUID: Uuid(as_uuid=True),
    dict[str, Any]: JSONType,
    list[Any]: JSONType,
}


class UUIDPrimaryKey:
    """Mixin: a UUIDv7 primary key assigned by the application."""

    id: Mapped[uuid.UUID] = mapped_column(Uuid(as_uuid=True), primary_key=True, default=uuid7)


class Timestamps:
    """Mixin: creation and last-change times, in UTC."""

    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(
        UTCDateTime(), default=utcnow, onupdate=utcnow, nullable=False
    )


def _configure_sqlite(engine: AsyncEngine) -> None:
    """Make SQLite behave transactionally like PostgreSQL for our purposes.

    pysqlite's own transaction handling breaks SAVEPOINTs and transactional DDL; we take it
    over (SQLAlchemy's documented recipe) and begin IMMEDIATE so that two writers queue on the
    busy timeout instead of failing with SQLITE_BUSY when a read transaction turns into a write.
    """

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def _report_connect_failures_as_database_errors(engine: AsyncEngine) -> None:
    """A refused, reset or timed-out connection attempt becomes an ``OperationalError``.

    asyncpg raises the socket's own ``OSError`` when the server is down or restarting, which
    SQLAlchemy passes through unwrapped; as an ``OperationalError`` it is recognisably "the
    database is unavailable" (503) rather than an unexpected failure (500).
    """

    @event.listens_for(engine.sync_engine, "do_connect")
    def _connect(dialect: Dialect, _record: ConnectionPoolEntry, cargs: Any, cparams: Any) -> Any:
        try:
            return dialect.connect(*cargs, **cparams)
        except OSError as exc:
            raise dialect.loaded_dbapi.OperationalError(
                f"cannot connect to the database: {type(exc).__name__}: {exc}"
            ) from exc


def create_engine(
    url: str,
    *,
    schema: str | None = None,
    application_name: str = "parcelpro",
    pool_size: int = 20,
    max_overflow: int = 0,
    connect_timeout_seconds: float = 5.0,
    echo: bool = False,
) -> AsyncEngine:
    """An async engine for ``url``; on PostgreSQL every connection works in ``schema``."""
    if url.startswith("sqlite"):
        engine = create_async_engine(url, echo=echo, hide_parameters=True)
        _configure_sqlite(engine)
        return engine
    server_settings = {"application_name": application_name}
    if schema:
        server_settings["search_path"] = schema
    engine = create_async_engine(
        url,
        echo=echo,
        # Statement parameters hold personal data; error messages (and so logs) never quote them.
        hide_parameters=True,
        pool_size=pool_size,
        max_overflow=max_overflow,
        # No pre-ping: it costs a round trip on every checkout (measured: half the time of a
        # one-row read). A connection that died with a database restart fails its statement,
        # which is answered 503, and SQLAlchemy then replaces every older pooled connection.
        pool_recycle=1800,
        # An unreachable server fails a request in seconds instead of hanging it (asyncpg's
        # own default is a minute).
        connect_args={"server_settings": server_settings, "timeout": connect_timeout_seconds},
    )
    _report_connect_failures_as_database_errors(engine)
    return engine


T = TypeVar("T")

# SQLSTATE classes of an unavailable server, not of a wrong query: 08 connection exception,
# 53 insufficient resources (too many connections), 57P shutdown, crash, still starting up.
_UNAVAILABLE_SQLSTATES = ("08", "53", "57P")


def is_database_unavailable(error: BaseException) -> bool:
    """True when ``error`` means the database cannot be used right now (down, restarting,
    connection lost, pool exhausted, SQLite busy) rather than that a statement is wrong.

    Such failures are answered ``503`` with ``Retry-After``: retrying later is exactly right.
    """
    seen: set[int] = set()
    pending: list[BaseException | None] = [error]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, sa_exc.DBAPIError) and current.connection_invalidated:
            return True
        if isinstance(
            current,
            sa_exc.OperationalError
            | sa_exc.InterfaceError
            | sa_exc.DisconnectionError
            | sa_exc.TimeoutError,
        ):
            return True
        sqlstate = getattr(current, "sqlstate", None)
        if isinstance(sqlstate, str) and sqlstate.startswith(_UNAVAILABLE_SQLSTATES):
            return True
        if isinstance(current, sa_exc.DBAPIError):
            pending.append(current.orig)
        pending.extend((current.__cause__, current.__context__))
    return False


async def retry_while_unavailable(work: Callable[[], Awaitable[T]], *, within: float) -> T:
    """Run ``work`` (a whole unit of work: session, statements, commit) again while the
    database is unavailable, for up to ``within`` seconds; other errors are not retried.

    Background jobs use it to record an outcome that must outlive a database restart: a
    webhook that went out, a privacy task that is done. Were the record lost, the work would
    be done a second time once its lease ran out.
    """
    async for attempt in stamina.retry_context(
        on=is_database_unavailable,
        attempts=None,
        timeout=max(within, 0.001),
        wait_initial=0.2,
        wait_max=2.0,
        wait_jitter=0.2,
    ):
        with attempt:
            return await work()
    raise RuntimeError("unreachable: stamina re-raises the last error")  # pragma: no cover


class Database:
    """One service's engine and session factory."""

    def __init__(self, bind: AsyncEngine | AsyncConnection, *, owns_engine: bool = True) -> None:
        self.bind = bind
        self.owns_engine = owns_engine
        options: dict[str, Any] = {"expire_on_commit": False}
        if isinstance(bind, AsyncConnection):
            # Tests run the whole app inside one outer transaction that is rolled back.
            options["join_transaction_mode"] = "create_savepoint"
        self.sessionmaker: async_sessionmaker[AsyncSession] = async_sessionmaker(bind, **options)
        read_bind: AsyncEngine | AsyncConnection = bind
        if isinstance(bind, AsyncEngine) and bind.dialect.name == "postgresql":
            # A read of one consistent statement needs no BEGIN/COMMIT round trips. (SQLite
            # keeps its explicit BEGIN IMMEDIATE transactions, see _configure_sqlite.)
            read_bind = bind.execution_options(isolation_level="AUTOCOMMIT")
        self.read_sessionmaker: async_sessionmaker[AsyncSession] = async_sessionmaker(
            read_bind, **options
        )

    @property
    def is_shared_connection(self) -> bool:
        """True when every session runs on one connection (tests' rolled-back database).

        Background workers must not start then: two tasks on one connection would interleave
        their savepoints. Tests drive such work explicitly instead.
        """
        return isinstance(self.bind, AsyncConnection)

    @property
    def dialect_name(self) -> str:
        return self.bind.dialect.name

    def session(self) -> AsyncSession:
        return self.sessionmaker()

    async def dispose(self) -> None:
        if self.owns_engine and isinstance(self.bind, AsyncEngine):
            await self.bind.dispose()


@contextlib.asynccontextmanager
async def _unit(sessionmaker: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """Committed when the block succeeds, rolled back otherwise."""
    async with sessionmaker() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """The request's unit of work: committed when the endpoint succeeds, rolled back otherwise."""
    database: Database = request.app.state.database
    async with _unit(database.sessionmaker) as session:
        yield session


# scope="function": the commit runs before the response is sent, so a failed commit can never
# be reported to the client as a success.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


@contextlib.asynccontextmanager
async def read_unit(database: Database) -> AsyncIterator[AsyncSession]:
    """A read session: on PostgreSQL each statement runs and commits on its own (autocommit),
    saving the BEGIN and COMMIT round trips on the hottest routes. A write through it must be
    one statement that stands alone (an audit record), never a unit of work. Its commit sends
    nothing on PostgreSQL (autocommit); elsewhere it ends the transaction."""
    async with _unit(database.read_sessionmaker) as session:
        yield session


async def get_read_session(request: Request) -> AsyncIterator[AsyncSession]:
    """The request's read session (see :func:`read_unit`)."""
    async with read_unit(request.app.state.database) as session:
        yield session


ReadSessionDep = Annotated[AsyncSession, Depends(get_read_session, scope="function")]
