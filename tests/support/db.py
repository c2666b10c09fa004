"""Test databases: PostgreSQL when ``TEST_DATABASE_URL`` is set, else SQLite files.

Each service is migrated once per test session; each test then runs inside an outer
transaction that is rolled back (SQLAlchemy's ``create_savepoint`` recipe), so tests neither
see each other's rows nor need to delete them.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path

from sqlalchemy import text

from libs.common.db import Database, create_engine
from libs.common.migrations import alembic_config, upgrade
from libs.common.settings import BaseServiceSettings

POSTGRES_URL = os.environ.get("TEST_DATABASE_URL", "").strip()
if POSTGRES_URL.startswith("postgresql://"):
    POSTGRES_URL = "postgresql+asyncpg://" + POSTGRES_URL.removeprefix("postgresql://")


def on_postgres() -> bool:
    return bool(POSTGRES_URL)


def database_url(service: str, sqlite_dir: Path) -> str:
    if POSTGRES_URL:
        return POSTGRES_URL
    return f"sqlite+aiosqlite:///{(sqlite_dir / f'{service}.db').as_posix()}"


async def drop_schema(url: str, schema: str) -> None:
    """Start a test session from an empty schema (PostgreSQL)."""
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    finally:
        await engine.dispose()


def migrate_fresh(settings: BaseServiceSettings, migrations_dir: Path) -> None:
    """Bring the service's schema to head from nothing.

    Runs in a thread of its own: Alembic drives its own event loop, and a fixture may be set up
    while the test's loop is running.
    """

    def work() -> None:
        if settings.db_schema:
            asyncio.run(drop_schema(settings.database_url, settings.db_schema))
        upgrade(
            alembic_config(
                migrations_dir,
                database_url=settings.database_url,
                schema=settings.db_schema,
                version_table=settings.version_table,
            )
        )

    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(work).result()


@asynccontextmanager
async def rolled_back(settings: BaseServiceSettings) -> AsyncIterator[Database]:
    """A Database whose every session lives inside one transaction rolled back at the end."""
    engine = create_engine(settings.database_url, schema=settings.db_schema, pool_size=2)
    try:
        async with engine.connect() as conn:
            outer = await conn.begin()
            try:
                yield Database(conn, owns_engine=False)
            finally:
                if outer.is_active:
                    await outer.rollback()
    finally:
        await engine.dispose()
