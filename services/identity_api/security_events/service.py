"""Recording and reading security events."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.pagination import PageParams
from services.identity_api.models import SecurityEvent, SecurityEventType
from services.identity_api.origin import Origin
from services.identity_api.security_events import repository


async def record(
    session: AsyncSession,
    account_id: uuid.UUID,
    type_: SecurityEventType,
    *,
    origin: Origin,
    now: datetime,
    **details: Any,
) -> None:
    await repository.add(
        session,
        SecurityEvent(
            account_id=account_id,
            type=type_,
            ip=origin.ip,
            user_agent=origin.user_agent,
            details=details,
            created_at=now,
        ),
    )


async def list_for_account(
    session: AsyncSession, account_id: uuid.UUID, params: PageParams
) -> tuple[Sequence[SecurityEvent], str | None]:
    return await repository.page_for_account(session, account_id, params)
