"""Disclosure SQL."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.pagination import PageParams, paginate_by_id
from services.privacy_api.models import Disclosure, PrivacyRequest


async def add(session: AsyncSession, disclosure: Disclosure) -> None:
    session.add(disclosure)
    await session.flush()


async def get(session: AsyncSession, disclosure_id: uuid.UUID) -> Disclosure | None:
    return await session.get(Disclosure, disclosure_id)


async def page(
    session: AsyncSession, params: PageParams, *, decision: str | None
) -> tuple[Sequence[Disclosure], str | None]:
    statement = select(Disclosure)
    if decision is not None:
        statement = statement.where(Disclosure.decision == decision)
    return await paginate_by_id(session, statement, Disclosure.id, params)


async def export_requests(
    session: AsyncSession, disclosure_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, PrivacyRequest]:
    if not disclosure_ids:
        return {}
    rows = await session.scalars(
        select(PrivacyRequest).where(PrivacyRequest.disclosure_id.in_(disclosure_ids))
    )
    return {row.disclosure_id: row for row in rows if row.disclosure_id is not None}
