"""Deleting what identity no longer has a reason to keep (AVG art. 5(1)(e): storage
limitation), run by ``python -m services.identity_api purge-expired`` (a daily CronJob)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, or_
from sqlalchemy.ext.asyncio import AsyncSession

from services.identity_api.models import Account, MailToken, OutboxMail, RefreshToken

GRACE = timedelta(days=7)
"""Expired credentials stay a week, so a security event's context can still be looked up."""


async def purge_expired(session: AsyncSession, now: datetime) -> dict[str, int]:
    """Set-based deletes; returns the rows deleted per table."""
    statements = {
        # Erased accounts whose fiscal retention ended: the last of their data goes; rows that
        # point at them (the staff access log) go with them (ON DELETE CASCADE).
        "accounts": delete(Account).where(Account.retain_until < now),
        "refresh_tokens": delete(RefreshToken).where(
            or_(RefreshToken.expires_at < now - GRACE, RefreshToken.revoked_at < now - GRACE)
        ),
        "mail_tokens": delete(MailToken).where(MailToken.expires_at < now - GRACE),
        # Mail given up on: it may hold a single-use link, and nobody will send it any more.
        "mail_outbox": delete(OutboxMail).where(OutboxMail.failed_at < now - GRACE),
    }
    deleted: dict[str, int] = {}
    for table, statement in statements.items():
        result = await session.execute(statement.execution_options(synchronize_session=False))
        deleted[table] = int(getattr(result, "rowcount", 0) or 0)
    return deleted
