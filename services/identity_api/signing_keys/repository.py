"""Queries on ``signing_keys``."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from services.identity_api.models import SigningKey


def _published(now: datetime) -> ColumnElement[bool]:
    return or_(SigningKey.retires_at.is_(None), SigningKey.retires_at > now)


async def published_keys(session: AsyncSession, now: datetime) -> Sequence[SigningKey]:
    statement = select(SigningKey).where(_published(now)).order_by(SigningKey.activates_at)
    return (await session.scalars(statement)).all()


async def published_key(session: AsyncSession, kid: str, now: datetime) -> SigningKey | None:
    statement = select(SigningKey).where(SigningKey.kid == kid, _published(now))
    return (await session.scalars(statement)).first()


async def add(session: AsyncSession, key: SigningKey) -> None:
    session.add(key)
    await session.flush()


async def retire_all_except(
    session: AsyncSession, kid: str, retires_at: datetime, now: datetime
) -> None:
    """Schedule every other published key to leave the JWKS at ``retires_at``."""
    await session.execute(
        update(SigningKey)
        .where(SigningKey.kid != kid, _published(now))
        .where(or_(SigningKey.retires_at.is_(None), SigningKey.retires_at > retires_at))
        .values(retires_at=retires_at)
    )
