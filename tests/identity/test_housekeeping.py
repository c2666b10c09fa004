"""Expired credentials, erased accounts, security events and staff access log entries past their
retention period are deleted."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from pydantic import ValidationError
from sqlalchemy import func, select

from libs.common.db import Database, create_engine
from services.identity_api.__main__ import main
from services.identity_api.housekeeping import (
    purge_expired,
    purge_expired_security_events,
    purge_expired_staff_access_log,
    run_housekeeping,
)
from services.identity_api.models import (
    Account,
    RefreshToken,
    SecurityEvent,
    StaffAccessLog,
    StaffRole,
    StaffUser,
)
from services.identity_api.settings import IdentitySettings
from tests.identity.test_staff import REASON
from tests.support.identity_app import Identity, bearer

FIVE_YEARS = timedelta(days=1825)


async def test_erased_account_is_deleted_after_seven_years_not_before(identity: Identity) -> None:
    account = await identity.register()
    kept = await identity.register()
    await identity.client.post(
        "/internal/v1/subjects/erase",
        json={"subject": {"account_id": account["account_id"]}, "request_id": "hk-1"},
        headers=bearer(await identity.service_token("privacy_api")),
    )
    # Seven years after the end of the financial year of the erasure (AWR art. 52(4)).
    retention_end = datetime(identity.clock.now().year + 8, 1, 1, tzinfo=UTC)
    async with identity.database.session() as session:
        soon = await purge_expired(session, retention_end - timedelta(days=1))
        later = await purge_expired(session, retention_end + timedelta(days=1))
        await session.commit()
        remaining = (await session.scalars(select(Account.id))).all()
    assert soon["accounts"] == 0
    assert later["accounts"] == 1
    assert uuid.UUID(account["account_id"]) not in remaining
    assert uuid.UUID(kept["account_id"]) in remaining


async def test_expired_refresh_tokens_are_deleted_after_a_grace_week(identity: Identity) -> None:
    account = await identity.register()
    await identity.login(account["email"])
    async with identity.database.session() as session:
        early = await purge_expired(session, identity.clock.now() + timedelta(days=31))
        late = await purge_expired(session, identity.clock.now() + timedelta(days=38))
        count = await session.scalar(select(func.count()).select_from(RefreshToken))
    assert early["refresh_tokens"] == 0
    assert late["refresh_tokens"] == 1
    assert count == 0


async def test_security_events_are_deleted_after_a_year_younger_ones_stay(
    identity: Identity,
) -> None:
    account = await identity.register()
    for _ in range(3):
        await identity.login(account["email"])
    identity.clock.advance(timedelta(days=200))
    for _ in range(2):
        await identity.login(account["email"])
    identity.clock.advance(timedelta(days=166))  # the first four are a year and a day old
    deleted = await purge_expired_security_events(
        identity.database.sessionmaker,
        now=identity.clock.now(),
        retention_days=identity.settings.security_event_retention_days,
        batch_size=2,
    )
    async with identity.database.session() as session:
        left = (await session.scalars(select(SecurityEvent.created_at))).all()
    assert deleted == 4
    assert len(left) == 2
    assert all(created_at > identity.clock.now() - timedelta(days=365) for created_at in left)


async def test_purge_expired_command_deletes_year_old_security_events(identity: Identity) -> None:
    account = await identity.register()
    identity.clock.advance(timedelta(days=364))
    await identity.login(account["email"])
    identity.clock.advance(timedelta(days=2))
    deleted = await run_housekeeping(
        identity.database.sessionmaker, identity.settings, now=identity.clock.now()
    )
    async with identity.database.session() as session:
        types = (await session.scalars(select(SecurityEvent.type))).all()
    assert deleted["security_events"] == 1
    assert types == ["login_succeeded"]


def test_security_events_cannot_be_kept_longer_than_the_register_promises() -> None:
    with pytest.raises(ValidationError, match="security_event_retention_days"):
        IdentitySettings(security_event_retention_days=400)


async def read_as_support(
    identity: Identity, support: dict[str, str], account: dict[str, str]
) -> None:
    """One staff read of the account and two e-mail searches that find nobody (entries without
    an account, which no account's purge takes)."""
    read = await identity.client.get(
        f"/v1/staff/accounts/{account['account_id']}",
        headers=support | {"X-Access-Reason": REASON},
    )
    assert read.status_code == 200
    for email in ("nobody@example.nl", "no-one@example.nl"):
        search = await identity.client.get(
            "/v1/staff/accounts",
            params={"email": email},
            headers=support | {"X-Access-Reason": REASON},
        )
        assert search.json() == {"data": [], "next_cursor": None}


async def access_log(identity: Identity) -> list[dict[str, object]]:
    _, admin = await identity.staff(StaffRole.ADMIN)
    response = await identity.client.get("/v1/staff/access-log", headers=admin)
    assert response.status_code == 200
    entries: list[dict[str, object]] = response.json()["data"]
    return entries


# Tokens are checked against the real time, so staff log in first and the clock moves only for
# the reads they log and for the purge.


async def test_staff_access_log_entries_are_deleted_after_five_years_younger_ones_stay(
    identity: Identity,
) -> None:
    account = await identity.register()
    _, support = await identity.staff(StaffRole.SUPPORT)
    start = identity.clock.now()
    await read_as_support(identity, support, account)
    identity.clock.advance(timedelta(days=10))
    await read_as_support(identity, support, account)
    deleted = await purge_expired_staff_access_log(
        identity.database.sessionmaker,
        now=start + FIVE_YEARS + timedelta(days=1),
        retention_days=identity.settings.audit_log_retention_days,
        batch_size=2,
    )
    identity.clock.set(start)
    entries = await access_log(identity)
    assert deleted == 3
    assert len(entries) == 3
    assert {entry["account_id"] for entry in entries} == {account["account_id"], None}
    young = start + timedelta(days=10)
    assert all(datetime.fromisoformat(str(entry["created_at"])) == young for entry in entries)


async def test_staff_access_log_younger_than_five_years_is_kept(identity: Identity) -> None:
    account = await identity.register()
    _, support = await identity.staff(StaffRole.SUPPORT)
    await read_as_support(identity, support, account)
    deleted = await run_housekeeping(
        identity.database.sessionmaker,
        identity.settings,
        now=identity.clock.now() + FIVE_YEARS - timedelta(minutes=1),
    )
    assert deleted["staff_access_log"] == 0
    assert len(await access_log(identity)) == 3


def test_purge_expired_command_reports_the_staff_access_log_entries_it_deleted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'identity.db'}"
    monkeypatch.setenv("IDENTITY_DATABASE_URL", url)
    monkeypatch.setenv("ENVIRONMENT", "test")
    assert main(["migrate"]) == 0
    now = datetime.now(UTC)
    kept = asyncio.run(_seed_searches(url, [now - FIVE_YEARS - timedelta(days=1), now]))[1]
    capsys.readouterr()
    assert main(["purge-expired"]) == 0
    report = orjson.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["staff_access_log"] == 1
    assert asyncio.run(_access_log_ids(url)) == [kept]


async def _seed_searches(url: str, moments: list[datetime]) -> list[uuid.UUID]:
    """A staff member's searches that found nobody, one at each moment, in that order."""
    database = Database(create_engine(url))
    try:
        async with database.session() as session:
            staff = StaffUser(
                email="support@parcelpro.nl",
                password_hash="-",
                role=StaffRole.SUPPORT,
                created_at=moments[0],
                updated_at=moments[0],
            )
            session.add(staff)
            await session.flush()
            entries = [
                StaffAccessLog(
                    staff_id=staff.id,
                    account_id=None,
                    action="account.search",
                    fields=[],
                    query="debtor_number=999999",
                    reason=REASON,
                    created_at=moment,
                )
                for moment in moments
            ]
            session.add_all(entries)
            await session.commit()
            return [entry.id for entry in entries]
    finally:
        await database.dispose()


async def _access_log_ids(url: str) -> list[uuid.UUID]:
    database = Database(create_engine(url))
    try:
        async with database.session() as session:
            return list((await session.scalars(select(StaffAccessLog.id))).all())
    finally:
        await database.dispose()


def test_staff_access_log_cannot_be_kept_longer_than_the_register_promises() -> None:
    with pytest.raises(ValidationError, match="audit_log_retention_days"):
        IdentitySettings(audit_log_retention_days=1826)
