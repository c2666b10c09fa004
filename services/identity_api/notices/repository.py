"""Queries on ``account_notices``."""

from __future__ import annotations

import uuid

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.identity_api.models import AccountNoticeRecord


async def get(session: AsyncSession, notice_id: uuid.UUID) -> AccountNoticeRecord | None:
    return await session.get(AccountNoticeRecord, notice_id)


async def add(session: AsyncSession, notice: AccountNoticeRecord) -> bool:
    """Insert; False when a concurrent call with the same notice id stored it first."""
    try:
        async with session.begin_nested():
            session.add(notice)
            await session.flush()
    except IntegrityError:
        return False
    return True
