"""Alembic, driven from code: each service has its own environment and version table.

``run_env`` is what every service's ``migrations/env.py`` calls. ``upgrade``/``downgrade`` are
synchronous (Alembic is), so async callers run them in a thread. ``create_request_log_table`` and
``drop_request_log_table`` are the first revision of every service.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import sqlalchemy as sa
from alembic import command, op
from alembic.config import Config
from sqlalchemy import MetaData, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.db import UTCDateTime, create_engine


def alembic_config(
    migrations_dir: Path, *, database_url: str, schema: str | None, version_table: str
) -> Config:
    config = Config()
    config.set_main_option("script_location", str(migrations_dir))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    config.attributes["schema"] = schema
    config.attributes["version_table"] = version_table
    return config


def upgrade(config: Config, revision: str = "head") -> None:
    command.upgrade(config, revision)


def downgrade(config: Config, revision: str) -> None:
    command.downgrade(config, revision)


def _prepare_sqlite_dir(url: str) -> None:
    if url.startswith("sqlite") and ":///" in url:
        path = url.split(":///", 1)[1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)


def run_env(target_metadata: MetaData) -> None:
    """Body of a service's ``env.py`` (online mode only: we always have a database)."""
    from alembic import context

    config = context.config
    schema: str | None = config.attributes.get("schema")
    version_table: str = config.attributes.get("version_table") or "alembic_version"
    connection: Connection | None = config.attributes.get("connection")

    def do_run(sync_connection: Connection) -> None:
        is_sqlite = sync_connection.dialect.name == "sqlite"
        if schema and not is_sqlite:
            sync_connection.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
            sync_connection.execute(text(f'SET search_path TO "{schema}"'))
            # Committed here, so that the migrations' transaction is Alembic's own: a
            # migration's `autocommit_block` (CREATE INDEX CONCURRENTLY) commits and reopens
            # only a transaction Alembic began. The search path is the session's and stays.
            sync_connection.commit()
        context.configure(
            connection=sync_connection,
            target_metadata=target_metadata,
            version_table=version_table,
            render_as_batch=is_sqlite,
            compare_type=True,
            transaction_per_migration=False,
        )
        with context.begin_transaction():
            context.run_migrations()

    if connection is not None:
        do_run(connection)
        return

    url = config.get_main_option("sqlalchemy.url") or ""
    _prepare_sqlite_dir(url)

    async def run_async() -> None:
        engine: AsyncEngine = create_engine(url, schema=schema, application_name="migrations")
        try:
            async with engine.connect() as conn:
                await conn.run_sync(do_run)
                await conn.commit()
        finally:
            await engine.dispose()

    asyncio.run(run_async())


# The request_log table as revision 0001 of each service creates it. Every service's history
# starts here, so this must not change: a later change to the table is a new revision.
def create_request_log_table() -> None:
    op.create_table(
        "request_log",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("ip", sa.String(length=45), nullable=True),
        sa.Column("timestamp", UTCDateTime(timezone=True), nullable=False),
        sa.Column("duration_ms", sa.Double(), nullable=False),
        sa.Column("method", sa.String(length=16), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=True),
        sa.Column("port", sa.Integer(), nullable=True),
        sa.Column("path", sa.String(length=2048), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("request_size", sa.Integer(), nullable=False),
        sa.Column("response_size", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.String(length=128), nullable=False),
        sa.Column("service", sa.String(length=32), nullable=False),
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_request_log")),
    )
    op.create_index(
        "ix_request_log_account_id_timestamp", "request_log", ["account_id", "timestamp"]
    )
    op.create_index("ix_request_log_timestamp", "request_log", ["timestamp"])


def drop_request_log_table() -> None:
    op.drop_index("ix_request_log_timestamp", table_name="request_log")
    op.drop_index("ix_request_log_account_id_timestamp", table_name="request_log")
    op.drop_table("request_log")


# A later revision of each service: the access export reads an account's entries in keyset
# batches by id, which (account_id, timestamp) could not serve without sorting them all.
def index_request_log_by_account_and_id() -> None:
    op.create_index("ix_request_log_account_id_id", "request_log", ["account_id", "id"])
    op.drop_index("ix_request_log_account_id_timestamp", table_name="request_log")


def index_request_log_by_account_and_timestamp() -> None:
    op.create_index(
        "ix_request_log_account_id_timestamp", "request_log", ["account_id", "timestamp"]
    )
    op.drop_index("ix_request_log_account_id_id", table_name="request_log")
