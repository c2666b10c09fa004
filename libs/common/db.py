"""Async database access shared by the services: engine, sessions, column types and mixins.

PostgreSQL (asyncpg) in production, each service in its own schema; SQLite (aiosqlite) as the
embedded default, one file per service. Primary keys are UUIDv7 (time-ordered, so keyset
pagination and index locality come for free); timestamps are always timezone-aware UTC.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated, Any

import uuid_utils.compat as uuid_compat
from fastapi import Depends, Request
from sqlalchemy import JSON, MetaData, Uuid, event
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import Mapped, mapped_column
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


def create_engine(
    url: str,
    *,
    schema: str | None = None,
    application_name: str = "parcelpro",
    pool_size: int = 10,
    max_overflow: int = 10,
    echo: bool = False,
) -> AsyncEngine:
    """An async engine for ``url``; on PostgreSQL every connection works in ``schema``."""
    if url.startswith("sqlite"):
        engine = create_async_engine(url, echo=echo)
        _configure_sqlite(engine)
        return engine
    server_settings = {"application_name": application_name}
    if schema:
        server_settings["search_path"] = schema
    return create_async_engine(
        url,
        echo=echo,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_pre_ping=True,
        pool_recycle=1800,
        connect_args={"server_settings": server_settings},
    )


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


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """The request's unit of work: committed when the endpoint succeeds, rolled back otherwise."""
    database: Database = request.app.state.database
    async with database.sessionmaker() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise


# scope="function": the commit runs before the response is sent, so a failed commit can never
# be reported to the client as a success.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
