"""Every service's migrations go up and down cleanly, on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from alembic.config import Config
from sqlalchemy import inspect, text
from sqlalchemy.ext.asyncio import AsyncConnection

from libs.common.db import create_engine
from libs.common.migrations import alembic_config, downgrade, upgrade
from libs.common.revisions import head_revisions
from services.identity_api.app import MIGRATIONS_DIR as IDENTITY_MIGRATIONS
from services.identity_api.models import Base as IdentityBase
from services.identity_api.settings import IdentitySettings
from services.privacy_api.app import MIGRATIONS_DIR as PRIVACY_MIGRATIONS
from services.privacy_api.models import Base as PrivacyBase
from services.privacy_api.settings import PrivacySettings
from services.shipping_api.app import MIGRATIONS_DIR as SHIPPING_MIGRATIONS
from services.shipping_api.models import Base as ShippingBase
from services.shipping_api.settings import ShippingSettings
from tests.support.db import POSTGRES_URL, drop_schema

SERVICES = {
    "identity": (IdentitySettings, IDENTITY_MIGRATIONS, IdentityBase),
    "shipping": (ShippingSettings, SHIPPING_MIGRATIONS, ShippingBase),
    "privacy": (PrivacySettings, PRIVACY_MIGRATIONS, PrivacyBase),
}


def tables(url: str, schema: str | None) -> set[str]:
    async def read() -> set[str]:
        engine = create_engine(url, schema=schema)
        try:
            async with engine.connect() as conn:
                return set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
        finally:
            await engine.dispose()

    return asyncio.run(read())


def databases(tmp_path: Path, service: str) -> list[tuple[str, str | None]]:
    found: list[tuple[str, str | None]] = [
        (f"sqlite+aiosqlite:///{tmp_path / f'{service}.db'}", None)
    ]
    if POSTGRES_URL:
        # A schema of its own, so the session's migrated schemas are left alone.
        found.append((POSTGRES_URL, f"{service}_migration_test"))
    return found


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_upgrade_downgrade_upgrade(service: str, tmp_path: Path) -> None:
    settings_cls, migrations_dir, base = SERVICES[service]
    for url, schema in databases(tmp_path, service):
        if schema:
            asyncio.run(drop_schema(url, schema))
        version_table = f"{service}_alembic_version"
        config = alembic_config(
            migrations_dir, database_url=url, schema=schema, version_table=version_table
        )
        upgrade(config)
        expected = set(base.metadata.tables) | {version_table}
        assert tables(url, schema) == expected
        downgrade(config, "base")
        assert tables(url, schema) == {version_table}
        upgrade(config)
        assert tables(url, schema) == expected
        if schema:
            asyncio.run(drop_schema(url, schema))
    assert head_revisions(migrations_dir)
    assert settings_cls.service_name == service


def alembic_heads(migrations_dir: Path) -> set[str]:
    from alembic.script import ScriptDirectory

    config = alembic_config(migrations_dir, database_url="", schema=None, version_table="")
    return set(ScriptDirectory.from_config(config).get_heads())


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_heads_read_without_alembic_are_alembics(service: str) -> None:
    _, migrations_dir, _ = SERVICES[service]
    assert head_revisions(migrations_dir) == alembic_heads(migrations_dir) != set()


def test_heads_of_branches_and_a_merge_are_alembics(tmp_path: Path) -> None:
    """Two branches from one root, one of them merged with a third: the heads are the merge
    and the open branch, whichever way a file writes its assignments."""
    versions = tmp_path / "versions"
    versions.mkdir()
    files = {
        "a_root.py": 'revision = "a"\ndown_revision = None\n',
        "b_left.py": 'revision: str = "b"\ndown_revision: str | None = "a"\n',
        "c_right.py": 'revision = "c"\ndown_revision = "a"\n',
        "d_other.py": 'revision = "d"\ndown_revision = "a"\n',
        "e_merge.py": 'revision = "e"\ndown_revision = ("b", "d")\n',
    }
    for name, assignments in files.items():
        rest = "branch_labels = None\ndepends_on = None\n"
        (versions / name).write_text(f'"""{name}"""\n{assignments}{rest}')
    assert head_revisions(tmp_path) == alembic_heads(tmp_path) == {"c", "e"}


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_models_and_migrations_agree(service: str, tmp_path: Path) -> None:
    """A model change without a migration fails here (autogenerate finds nothing to do)."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    _, migrations_dir, base = SERVICES[service]
    for url, schema in databases(tmp_path, service):
        if schema:
            asyncio.run(drop_schema(url, schema))
        config = alembic_config(
            migrations_dir, database_url=url, schema=schema, version_table=f"{service}_v"
        )
        upgrade(config)

        async def diff(url: str = url, schema: str | None = schema) -> list[object]:
            engine = create_engine(url, schema=schema)
            try:
                async with engine.connect() as conn:
                    return await conn.run_sync(
                        lambda c: compare_metadata(
                            MigrationContext.configure(
                                c, opts={"compare_type": True, "version_table": f"{service}_v"}
                            ),
                            base.metadata,
                        )
                    )
            finally:
                await engine.dispose()

        assert asyncio.run(diff()) == []
        if schema:
            asyncio.run(drop_schema(url, schema))


PARTIAL_LOOKUPS = {
    "ix_shipments_account_id_reference": "reference IS NOT NULL",
    "ix_shipments_recipient_email_index": "recipient_email_index IS NOT NULL",
    "ix_shipments_recipient_phone_index": "recipient_phone_index IS NOT NULL",
}


@pytest.mark.skipif(not POSTGRES_URL, reason="concurrent index builds are PostgreSQL's")
def test_shipping_index_rebuild_leaves_the_table_open_to_writes() -> None:
    """Shipping's 0005 replaces three indexes of shipments while a writer holds the table: a
    second writer goes on meanwhile (a plain DROP/CREATE INDEX queues behind the first writer
    and every later one queues behind it), and the result is the partial indexes, all valid."""
    schema = "shipping_index_rebuild_test"
    config = _shipping_at_0004(schema)
    touch = text("UPDATE shipments SET reference = reference WHERE false")

    async def migrate_beside_writers() -> None:
        engine = create_engine(POSTGRES_URL, schema=schema)
        try:
            async with engine.connect() as holder, engine.connect() as other:
                await holder.execute(touch)  # its transaction stays open: a writer at work
                migration = asyncio.create_task(asyncio.to_thread(upgrade, config, "0005"))
                await _until_waiting_on_the_holder(other, schema)
                await other.execute(text("SET lock_timeout = '3s'"))
                await other.execute(touch)
                await other.commit()
                await holder.commit()
                await asyncio.wait_for(migration, 60)
        finally:
            await engine.dispose()

    asyncio.run(migrate_beside_writers())

    found = asyncio.run(_shipments_indexes(schema))
    assert _lookups(found) == {
        name: (f"({predicate})", True) for name, predicate in PARTIAL_LOOKUPS.items()
    }
    assert all(valid for _, valid in found.values())
    assert not [name for name in found if name.endswith("_next")]

    downgrade(config, "0004")
    found = asyncio.run(_shipments_indexes(schema))
    assert _lookups(found) == {name: (None, True) for name in PARTIAL_LOOKUPS}
    asyncio.run(drop_schema(POSTGRES_URL, schema))


@pytest.mark.skipif(not POSTGRES_URL, reason="concurrent index builds are PostgreSQL's")
def test_shipping_index_rebuild_runs_again_after_an_interrupted_run() -> None:
    """What a stopped run of 0005 leaves behind (a half-built index under the new name; the old
    index already dropped) does not stop the next run, which ends with the partial indexes."""
    schema = "shipping_index_rerun_test"
    config = _shipping_at_0004(schema)
    asyncio.run(
        _execute(
            schema,
            "CREATE INDEX ix_shipments_account_id_reference_next ON shipments (id)",
            "CREATE INDEX ix_shipments_recipient_email_index_next ON shipments"
            " (recipient_email_index) WHERE recipient_email_index IS NOT NULL",
            "DROP INDEX ix_shipments_recipient_email_index",
        )
    )
    upgrade(config, "0005")
    found = asyncio.run(_shipments_indexes(schema))
    assert _lookups(found) == {
        name: (f"({predicate})", True) for name, predicate in PARTIAL_LOOKUPS.items()
    }
    assert not [name for name in found if name.endswith("_next")]
    asyncio.run(drop_schema(POSTGRES_URL, schema))


def _shipping_at_0004(schema: str) -> Config:
    """Shipping's migrations up to the revision before 0005, in a fresh ``schema``."""
    asyncio.run(drop_schema(POSTGRES_URL, schema))
    config = alembic_config(
        SHIPPING_MIGRATIONS, database_url=POSTGRES_URL, schema=schema, version_table="v"
    )
    upgrade(config, "0004")
    return config


def _lookups(found: dict[str, tuple[str | None, bool]]) -> dict[str, tuple[str | None, bool]]:
    return {name: found[name] for name in PARTIAL_LOOKUPS}


async def _execute(schema: str, *statements: str) -> None:
    engine = create_engine(POSTGRES_URL, schema=schema)
    try:
        async with engine.begin() as conn:
            for statement in statements:
                await conn.execute(text(statement))
    finally:
        await engine.dispose()


async def _shipments_indexes(schema: str) -> dict[str, tuple[str | None, bool]]:
    """Each index of shipments: its predicate (None when it covers every row), and whether it
    is valid."""
    engine = create_engine(POSTGRES_URL, schema=schema)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(
                text(
                    "SELECT c.relname, pg_get_expr(i.indpred, i.indrelid), i.indisvalid"
                    " FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
                    " WHERE i.indrelid = 'shipments'::regclass"
                )
            )
            return {name: (predicate, valid) for name, predicate, valid in rows}
    finally:
        await engine.dispose()


async def _until_waiting_on_the_holder(conn: AsyncConnection, schema: str) -> None:
    """Until the migration's session waits for a lock (the holder's open transaction)."""
    for _ in range(200):
        waiting = await conn.scalar(
            text(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'migrations'"
                " AND wait_event_type = 'Lock' AND query LIKE '%ix_shipments_%'"
            )
        )
        await conn.rollback()
        if waiting:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"the migration of {schema} never waited for the open writer")
