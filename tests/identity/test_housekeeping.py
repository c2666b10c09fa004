"""Expired credentials, erased accounts and security events past their retention period are
deleted."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from pydantic import ValidationError
from sqlalchemy import func, select

from services.identity_api.housekeeping import (
    purge_expired,
    purge_expired_security_events,
    run_housekeeping,
)
from services.identity_api.models import Account, RefreshToken, SecurityEvent
from services.identity_api.settings import IdentitySettings
from tests.support.identity_app import Identity, bearer


async def test_erased_account_is_deleted_after_seven_years_not_before(identity: Identity) -> None:
    account = await identity.register()
    kept = await identity.register()
    await identity.client.post(
        "/internal/v1/subjects/erase",
        json={"subject": {"account_id": account["account_id"]}, "request_id": "hk-1"},
        headers=bearer(await identity.service_token("privacy_api")),
    )
    async with identity.database.session() as session:
        soon = await purge_expired(session, identity.clock.now() + timedelta(days=365 * 6))
        later = await purge_expired(session, identity.clock.now() + timedelta(days=365 * 7 + 2))
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
