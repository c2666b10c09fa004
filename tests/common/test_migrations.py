"""Every service's migrations go up and down cleanly, on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import inspect

from libs.common.db import create_engine
from libs.common.migrations import alembic_config, downgrade, head_revisions, upgrade
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
