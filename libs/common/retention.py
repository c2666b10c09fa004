"""Deleting log rows past their retention period (AVG art. 5(1)(e): storage limitation) in short
batches that follow the primary key, for tables whose UUIDv7 key is their creation order."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import QueryableAttribute

from libs.common.db import UUIDPrimaryKey, among


async def purge_created_before(
    sessionmaker: async_sessionmaker[AsyncSession],
    model: type[UUIDPrimaryKey],
    created_at: QueryableAttribute[datetime],
    *,
    cutoff: datetime,
    batch_size: int = 1000,
) -> int:
    """Delete the rows of ``model`` whose ``created_at`` is before ``cutoff``; returns how many.
    Each batch is its own short transaction.

    The walk follows the primary key, a UUIDv7 and so creation order, in keyset steps: each
    step reads the next ``batch_size`` keys from the index and deletes those created before the
    cutoff. The first key younger than the cutoff ends the walk, since every later key is
    younger still; a filter on ``created_at`` alone would need an index of its own, or scan the
    rest of the table to learn that nothing more is due."""
    total = 0
    after: uuid.UUID | None = None
    while True:
        async with sessionmaker() as session:
            query = select(model.id, created_at)
            if after is not None:
                query = query.where(model.id > after)
            rows = (await session.execute(query.order_by(model.id).limit(batch_size))).all()
            due = [row_id for row_id, created in rows if created < cutoff]
            if due:
                result = await session.execute(
                    delete(model)
                    .where(among(session, model.id, due), created_at < cutoff)
                    .execution_options(synchronize_session=False)
                )
                await session.commit()
                total += int(getattr(result, "rowcount", 0) or 0)
        if len(due) < len(rows) or len(rows) < batch_size:
            return total
        after = rows[-1][0]
