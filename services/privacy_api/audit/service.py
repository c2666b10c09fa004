"""Recording what staff do: every staff action in this service leaves one audit entry, in the
same transaction as the action itself."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.auth import Principal
from services.privacy_api.audit import repository
from services.privacy_api.models import AuditLog


async def record(
    session: AsyncSession,
    *,
    actor: Principal,
    action: str,
    object_type: str,
    object_id: object | None,
    at: datetime,
    details: dict[str, Any] | None = None,
    http_request_id: str | None = None,
) -> None:
    await repository.append(
        session,
        AuditLog(
            at=at,
            actor=actor.subject,
            actor_kind=actor.kind.value,
            actor_roles=sorted(role.value for role in actor.roles),
            action=action,
            object_type=object_type,
            object_id=str(object_id) if object_id is not None else None,
            details=details or {},
            http_request_id=http_request_id,
        ),
    )
