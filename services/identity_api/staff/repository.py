"""Queries on ``staff_users`` and ``staff_access_log``."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.pagination import PageParams, paginate_by_id
from services.identity_api.models import StaffAccessLog, StaffUser


class DuplicateStaffEmail(Exception):
    pass


async def get(session: AsyncSession, staff_id: uuid.UUID) -> StaffUser | None:
    return await session.get(StaffUser, staff_id)


async def by_email(session: AsyncSession, email: str) -> StaffUser | None:
    statement = select(StaffUser).where(func.lower(StaffUser.email) == func.lower(email))
    return (await session.scalars(statement)).first()


async def add(session: AsyncSession, staff: StaffUser) -> None:
    try:
        async with session.begin_nested():
            session.add(staff)
            await session.flush()
    except IntegrityError as exc:
        raise DuplicateStaffEmail from exc


async def page(session: AsyncSession, params: PageParams) -> tuple[Sequence[Any], str | None]:
    return await paginate_by_id(session, select(StaffUser), StaffUser.id, params)


async def add_access(session: AsyncSession, entry: StaffAccessLog) -> None:
    session.add(entry)
    await session.flush()


async def page_access_log(
    session: AsyncSession,
    params: PageParams,
    *,
    account_id: uuid.UUID | None = None,
    staff_id: uuid.UUID | None = None,
) -> tuple[Sequence[Any], str | None]:
    statement = select(StaffAccessLog)
    if account_id is not None:
        statement = statement.where(StaffAccessLog.account_id == account_id)
    if staff_id is not None:
        statement = statement.where(StaffAccessLog.staff_id == staff_id)
    return await paginate_by_id(session, statement, StaffAccessLog.id, params)
