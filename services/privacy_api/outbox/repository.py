"""Outbox SQL: enqueue, claim due messages under a lease, mark sent or retry, purge."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import and_, delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.privacy_api.models import MailOutbox


async def add(session: AsyncSession, message: MailOutbox) -> None:
    session.add(message)
    await session.flush()


async def claim_due(
    session: AsyncSession, *, owner: str, now: datetime, lease: timedelta, limit: int = 20
) -> list[MailOutbox]:
    """Messages to send now, leased to ``owner`` so no other worker sends them meanwhile."""
    due = and_(
        MailOutbox.sent_at.is_(None),
        MailOutbox.next_attempt_at <= now,
        or_(MailOutbox.lease_expires_at.is_(None), MailOutbox.lease_expires_at < now),
    )
    candidates = select(MailOutbox.id).where(due).order_by(MailOutbox.next_attempt_at).limit(limit)
    if session.get_bind().dialect.name == "postgresql":
        candidates = candidates.with_for_update(skip_locked=True)
    ids = list((await session.scalars(candidates)).all())
    if not ids:
        return []
    await session.execute(
        update(MailOutbox)
        .where(MailOutbox.id.in_(ids), due)
        .values(lease_owner=owner, lease_expires_at=now + lease)
    )
    claimed = await session.scalars(
        select(MailOutbox).where(MailOutbox.id.in_(ids), MailOutbox.lease_owner == owner)
    )
    return list(claimed.all())


async def mark_sent(
    session: AsyncSession, message_id: uuid.UUID, owner: str, now: datetime
) -> None:
    await session.execute(
        update(MailOutbox)
        .where(MailOutbox.id == message_id, MailOutbox.lease_owner == owner)
        .values(sent_at=now, lease_owner=None, lease_expires_at=None)
    )


async def mark_retry(
    session: AsyncSession, message_id: uuid.UUID, owner: str, *, at: datetime, error: str
) -> None:
    await session.execute(
        update(MailOutbox)
        .where(MailOutbox.id == message_id, MailOutbox.lease_owner == owner)
        .values(
            attempts=MailOutbox.attempts + 1,
            next_attempt_at=at,
            last_error=error[:2000],
            lease_owner=None,
            lease_expires_at=None,
        )
    )


async def purge_sent_before(session: AsyncSession, cutoff: datetime) -> int:
    result = await session.execute(
        delete(MailOutbox).where(MailOutbox.sent_at.is_not(None), MailOutbox.sent_at < cutoff)
    )
    return int(getattr(result, "rowcount", 0) or 0)
