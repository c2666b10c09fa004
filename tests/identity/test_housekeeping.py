"""Expired credentials and erased accounts past their retention period are deleted."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import func, select

from services.identity_api.housekeeping import purge_expired
from services.identity_api.models import Account, RefreshToken
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
