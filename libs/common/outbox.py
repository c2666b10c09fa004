"""Claiming the due rows of an outbox table with a lease, for workers that may run side by side.

An outbox row (a webhook delivery, a mail, a notice) carries ``next_attempt_at``. A worker
claims the rows due now by moving that time past a lease, in a transaction of its own, and
works them afterwards without a transaction open: another worker sees them as not due until the
lease runs out, so a worker that dies mid-work only delays its rows. On PostgreSQL the rows
another worker is claiming at the same moment are skipped, not waited for.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker


def backoff(attempts: int, *, first: timedelta, cap: timedelta) -> timedelta:
    """How long to wait after the ``attempts``-th failure: ``first``, then doubling, at most
    ``cap`` (callers that want jitter add it)."""
    delay: timedelta = min(first * 2 ** max(attempts - 1, 0), cap)
    return delay


async def claim_due(
    sessionmaker: async_sessionmaker[AsyncSession],
    table: Any,
    *waiting: ColumnElement[bool],
    now: datetime,
    lease: timedelta,
    limit: int,
) -> Sequence[uuid.UUID]:
    """Ids of up to ``limit`` rows of ``table`` (a model with ``id`` and ``next_attempt_at``)
    that are ``waiting`` and due at ``now``, oldest first, claimed until ``now + lease``."""
    async with sessionmaker() as session:
        ids = (
            await session.scalars(
                select(table.id)
                .where(*waiting, table.next_attempt_at <= now)
                .order_by(table.next_attempt_at)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
        ).all()
        if ids:
            await session.execute(
                update(table).where(table.id.in_(ids)).values(next_attempt_at=now + lease)
            )
        await session.commit()
    return ids
