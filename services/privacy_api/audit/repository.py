"""Audit-log SQL: inserts and reads only. There is deliberately no update or delete here; the
deadlines run deletes expired entries (``deadlines.purge_expired_audit_log``)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.pagination import PageParams, paginate_by_id
from services.privacy_api.models import AuditLog


async def append(session: AsyncSession, entry: AuditLog) -> None:
    session.add(entry)
    await session.flush()


async def page(
    session: AsyncSession,
    params: PageParams,
    *,
    object_type: str | None = None,
    object_id: str | None = None,
) -> tuple[Sequence[AuditLog], str | None]:
    statement = select(AuditLog)
    if object_type is not None:
        statement = statement.where(AuditLog.object_type == object_type)
    if object_id is not None:
        statement = statement.where(AuditLog.object_id == object_id)
    return await paginate_by_id(session, statement, AuditLog.id, params)
