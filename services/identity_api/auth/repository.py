"""Queries on ``refresh_tokens`` and ``mail_tokens``."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.identity_api.models import MailToken, MailTokenPurpose, RefreshToken


async def add(session: AsyncSession, row: RefreshToken | MailToken) -> None:
    session.add(row)
    await session.flush()


async def refresh_token_by_hash(session: AsyncSession, token_hash: str) -> RefreshToken | None:
    statement = select(RefreshToken).where(RefreshToken.token_hash == token_hash)
    return (await session.scalars(statement)).first()


async def mark_rotated(session: AsyncSession, token_id: uuid.UUID, now: datetime) -> bool:
    """Claim a refresh token for rotation; false when another request rotated it first."""
    result = await session.execute(
        update(RefreshToken)
        .where(
            RefreshToken.id == token_id,
            RefreshToken.rotated_at.is_(None),
            RefreshToken.revoked_at.is_(None),
        )
        .values(rotated_at=now)
    )
    return bool(getattr(result, "rowcount", 0))


async def revoke_family(session: AsyncSession, family_id: uuid.UUID, now: datetime) -> int:
    result = await session.execute(
        update(RefreshToken)
        .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def revoke_all_for_account(
    session: AsyncSession, account_id: uuid.UUID, now: datetime
) -> int:
    result = await session.execute(
        update(RefreshToken)
        .where(RefreshToken.account_id == account_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def revoke_all_for_staff(session: AsyncSession, staff_id: uuid.UUID, now: datetime) -> int:
    result = await session.execute(
        update(RefreshToken)
        .where(RefreshToken.staff_id == staff_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def expire_mail_tokens(
    session: AsyncSession, account_id: uuid.UUID, purpose: MailTokenPurpose, now: datetime
) -> None:
    """A new link replaces the ones sent before."""
    await session.execute(
        update(MailToken)
        .where(
            MailToken.account_id == account_id,
            MailToken.purpose == purpose,
            MailToken.used_at.is_(None),
            MailToken.expires_at > now,
        )
        .values(expires_at=now)
    )


async def consume_mail_token(
    session: AsyncSession, token_hash: str, purpose: MailTokenPurpose, now: datetime
) -> MailToken | None:
    """Mark the token used, once: the conditional update makes a second use fail even when
    two requests race."""
    token = (
        await session.scalars(
            select(MailToken).where(
                MailToken.token_hash == token_hash, MailToken.purpose == purpose
            )
        )
    ).first()
    if token is None or token.used_at is not None or token.expires_at <= now:
        return None
    result = await session.execute(
        update(MailToken)
        .where(MailToken.id == token.id, MailToken.used_at.is_(None))
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    if not getattr(result, "rowcount", 0):
        return None
    return token
