"""Queries on ``api_keys``."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.pagination import PageParams, paginate_by_id
from services.identity_api.models import Account, ApiKey


async def add(session: AsyncSession, key: ApiKey) -> None:
    session.add(key)
    await session.flush()


async def count_active(session: AsyncSession, account_id: uuid.UUID) -> int:
    statement = select(func.count()).where(
        ApiKey.account_id == account_id, ApiKey.revoked_at.is_(None)
    )
    return int(await session.scalar(statement) or 0)


async def page_for_account(
    session: AsyncSession, account_id: uuid.UUID, params: PageParams
) -> tuple[Sequence[Any], str | None]:
    statement = select(ApiKey).where(ApiKey.account_id == account_id)
    return await paginate_by_id(session, statement, ApiKey.id, params)


async def get_for_account(
    session: AsyncSession, account_id: uuid.UUID, key_id: uuid.UUID
) -> ApiKey | None:
    statement = select(ApiKey).where(ApiKey.id == key_id, ApiKey.account_id == account_id)
    return (await session.scalars(statement)).first()


async def usable_by_prefix(session: AsyncSession, prefix: str) -> ApiKey | None:
    """A key that is not revoked and whose account still exists."""
    statement = (
        select(ApiKey)
        .join(Account, Account.id == ApiKey.account_id)
        .where(ApiKey.prefix == prefix, ApiKey.revoked_at.is_(None), Account.erased_at.is_(None))
    )
    return (await session.scalars(statement)).first()


async def touch(session: AsyncSession, key_id: uuid.UUID, now: datetime, stale: datetime) -> None:
    await session.execute(
        update(ApiKey)
        .where(ApiKey.id == key_id)
        .where((ApiKey.last_used_at.is_(None)) | (ApiKey.last_used_at < stale))
        .values(last_used_at=now)
        .execution_options(synchronize_session=False)
    )
