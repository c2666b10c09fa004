"""Audit log entries are kept five years (the register) and then deleted by the deadlines run;
the database still refuses to change any entry or to delete one younger than a year."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic.config import Config
from pydantic import ValidationError
from sqlalchemy import delete, func, select, text, update
from sqlalchemy.exc import DBAPIError

from libs.common.db import Database, create_engine
from libs.common.migrations import downgrade, upgrade
from services.privacy_api.context import collaborators_of
from services.privacy_api.deadlines import run_deadlines
from services.privacy_api.models import AuditLog
from services.privacy_api.settings import PrivacySettings
from tests.support.db import POSTGRES_URL
from tests.support.privacy_harness import Privacy, migrated_schema

YOUNG_REFUSED = "younger than 365 days"


def _entry(at: datetime, *, subject: str = "piet@example.nl") -> AuditLog:
    return AuditLog(
        at=at,
        actor="officer-1",
        actor_kind="staff",
        actor_roles=["privacy_officer"],
        action="privacy_request.viewed",
        object_type="privacy_request",
        object_id=str(uuid.uuid4()),
        details={"subject": subject},
    )


async def _add(database: Database, *entries: AuditLog) -> list[uuid.UUID]:
    # One by one: the purge walks the UUIDv7 keys, which follow the order of writing.
    ids = []
    async with database.session() as session:
        for entry in entries:
            session.add(entry)
            await session.flush()
            ids.append(entry.id)
        await session.commit()
    return ids


async def _stored_ids(database: Database) -> set[uuid.UUID]:
    async with database.session() as session:
        return set((await session.scalars(select(AuditLog.id))).all())


async def test_deadlines_run_deletes_audit_entries_past_five_years_and_keeps_younger_ones(
    privacy: Privacy,
) -> None:
    now = privacy.clock.now()
    database = privacy.app.state.database
    expired, kept = await _add(
        database,
        _entry(now - timedelta(days=1826), subject="expired@example.nl"),
        # Past the year the database guards, but within the five years: the purge keeps it.
        _entry(now - timedelta(days=1824), subject="kept@example.nl"),
    )
    await privacy.client.get("/v1/privacy/requests", headers=privacy.officer())

    report = await run_deadlines(collaborators_of(privacy.app.state))

    assert report.audit_log_purged == 1
    listed = await privacy.client.get("/v1/privacy/audit-log", headers=privacy.officer())
    assert listed.status_code == 200
    ids = {entry["id"] for entry in listed.json()["data"]}
    assert str(expired) not in ids
    assert str(kept) in ids
    assert "privacy_request.listed" in {entry["action"] for entry in listed.json()["data"]}
    assert expired not in await _stored_ids(database)


async def test_a_shorter_audit_log_retention_deletes_earlier(privacy: Privacy) -> None:
    now = privacy.clock.now()
    database = privacy.app.state.database
    expired, kept = await _add(
        database,
        _entry(now - timedelta(days=400)),
        _entry(now - timedelta(days=300)),
    )
    app = collaborators_of(privacy.app.state)
    settings = app.settings.model_copy(update={"audit_log_retention_days": 365})

    report = await run_deadlines(dataclasses.replace(app, settings=settings))

    assert report.audit_log_purged == 1
    stored = await _stored_ids(database)
    assert expired not in stored
    assert kept in stored


async def test_the_database_refuses_to_delete_an_audit_entry_younger_than_a_year(
    privacy: Privacy,
) -> None:
    # The database judges the age by its own clock, not the application's.
    database = privacy.app.state.database
    (young,) = await _add(database, _entry(datetime.now(UTC) - timedelta(days=364)))
    async with database.session() as session:
        with pytest.raises(DBAPIError, match=YOUNG_REFUSED):
            async with session.begin_nested():
                await session.execute(delete(AuditLog).where(AuditLog.id == young))
    assert young in await _stored_ids(database)


async def test_the_database_lets_an_entry_older_than_a_year_go_but_never_changes_one(
    privacy: Privacy,
) -> None:
    database = privacy.app.state.database
    old, older = await _add(
        database,
        _entry(datetime.now(UTC) - timedelta(days=366)),
        _entry(datetime.now(UTC) - timedelta(days=2000)),
    )
    async with database.session() as session:
        with pytest.raises(DBAPIError, match="append-only"):
            async with session.begin_nested():
                await session.execute(
                    update(AuditLog).where(AuditLog.id == older).values(action="nothing happened")
                )
        await session.execute(delete(AuditLog).where(AuditLog.id == old))
        await session.commit()
    stored = await _stored_ids(database)
    assert old not in stored
    assert older in stored
    async with database.session() as session:
        action = await session.scalar(select(AuditLog.action).where(AuditLog.id == older))
    assert action == "privacy_request.viewed"


@pytest.mark.skipif(not POSTGRES_URL, reason="TRUNCATE exists on PostgreSQL only")
async def test_postgres_still_refuses_to_truncate_the_audit_log(privacy: Privacy) -> None:
    database = privacy.app.state.database
    await _add(database, _entry(datetime.now(UTC) - timedelta(days=2000)))
    async with database.session() as session:
        with pytest.raises(DBAPIError, match="append-only"):
            async with session.begin_nested():
                await session.execute(text("TRUNCATE audit_log"))
        assert await session.scalar(select(func.count()).select_from(AuditLog)) == 1


@pytest.fixture
async def migrated(tmp_path: Path) -> AsyncIterator[tuple[Database, Config]]:
    """A privacy schema of its own at head, with its Alembic config, for up- and downgrades."""
    async with migrated_schema(tmp_path) as (url, schema, config):
        database = Database(create_engine(url, schema=schema))
        try:
            yield database, config
        finally:
            await database.dispose()


async def _delete(database: Database, entry_id: uuid.UUID) -> None:
    async with database.session() as session:
        await session.execute(delete(AuditLog).where(AuditLog.id == entry_id))
        await session.commit()


async def test_downgrading_restores_the_audit_log_that_refuses_every_delete(
    migrated: tuple[Database, Config],
) -> None:
    database, config = migrated
    old = datetime.now(UTC) - timedelta(days=2000)
    first, second, third = await _add(database, _entry(old), _entry(old), _entry(old))
    await _delete(database, first)

    await asyncio.to_thread(downgrade, config, "0004")
    with pytest.raises(DBAPIError, match="append-only"):
        await _delete(database, second)
    assert second in await _stored_ids(database)

    await asyncio.to_thread(upgrade, config)
    await _delete(database, second)
    (young,) = await _add(database, _entry(datetime.now(UTC)))
    with pytest.raises(DBAPIError, match=YOUNG_REFUSED):
        await _delete(database, young)
    assert await _stored_ids(database) == {third, young}


def test_audit_log_retention_defaults_to_five_years() -> None:
    assert PrivacySettings(environment="test").audit_log_retention_days == 1825


@pytest.mark.parametrize("days", [364, 1826])
def test_audit_log_retention_outside_a_year_to_five_years_is_refused(days: int) -> None:
    with pytest.raises(ValidationError, match="audit_log_retention_days"):
        PrivacySettings(environment="test", audit_log_retention_days=days)


@pytest.mark.parametrize("days", [365, 1825])
def test_audit_log_retention_within_the_bounds_is_accepted(days: int) -> None:
    settings = PrivacySettings(environment="test", audit_log_retention_days=days)
    assert settings.audit_log_retention_days == days


def test_audit_log_retention_set_by_environment_is_refused_past_five_years(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PRIVACY_AUDIT_LOG_RETENTION_DAYS", "3650")
    with pytest.raises(ValidationError, match="audit_log_retention_days"):
        PrivacySettings(environment="test")
