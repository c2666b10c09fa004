"""Consent SQL: the current decision per purpose and the history of every change."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.pagination import PageParams, paginate_by_id
from services.privacy_api.models import Consent, ConsentEvent
from services.privacy_api.subjects.repository import SubjectKeys


async def current(
    session: AsyncSession, keys: SubjectKeys, *, for_update: bool = False
) -> list[Consent]:
    """The subject's current decisions; ``for_update`` locks them until the transaction ends
    (PostgreSQL), so that a concurrent change or erasure waits, or has happened, before they
    are decided on."""
    if keys.account_id is not None:
        statement = select(Consent).where(Consent.account_id == keys.account_id)
    elif keys.email_index is not None:
        statement = select(Consent).where(Consent.email_index == keys.email_index)
    else:
        return []
    if for_update:
        statement = statement.with_for_update().execution_options(populate_existing=True)
    return list((await session.scalars(statement)).all())


async def save(session: AsyncSession, consent: Consent, event: ConsentEvent) -> None:
    session.add(consent)
    session.add(event)
    await session.flush()


async def history_page(
    session: AsyncSession, account_id: uuid.UUID, params: PageParams
) -> tuple[Sequence[ConsentEvent], str | None]:
    statement = select(ConsentEvent).where(ConsentEvent.account_id == account_id)
    return await paginate_by_id(session, statement, ConsentEvent.id, params)


async def events_of_request(session: AsyncSession, request_id: uuid.UUID) -> list[ConsentEvent]:
    statement = select(ConsentEvent).where(ConsentEvent.privacy_request_id == request_id)
    return list((await session.scalars(statement)).all())
