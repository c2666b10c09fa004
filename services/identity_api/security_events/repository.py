"""Queries on ``security_events``."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.pagination import PageParams, paginate_by_id
from services.identity_api.models import SecurityEvent


async def add(session: AsyncSession, event: SecurityEvent) -> None:
    session.add(event)
    await session.flush()


async def page_for_account(
    session: AsyncSession, account_id: uuid.UUID, params: PageParams
) -> tuple[Sequence[Any], str | None]:
    statement = select(SecurityEvent).where(SecurityEvent.account_id == account_id)
    return await paginate_by_id(session, statement, SecurityEvent.id, params)
