"""Deleting what identity no longer has a reason to keep (AVG art. 5(1)(e): storage
limitation), run by ``python -m services.identity_api purge-expired`` (a daily CronJob)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, or_
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from libs.common.idempotency import purge_expired_keys
from libs.common.retention import purge_created_before
from services.identity_api.models import (
    Account,
    AccountNoticeRecord,
    IdempotencyKey,
    MailToken,
    OutboxMail,
    RefreshToken,
    SecurityEvent,
    StaffAccessLog,
)
from services.identity_api.settings import IdentitySettings

GRACE = timedelta(days=7)
"""Expired credentials stay a week, so a security event's context can still be looked up."""
NOTICE_RETENTION = timedelta(days=30)
"""Account notices are kept only to recognise a sender's retry (decision 0112); a sender
gives a notice up before then, or a late retry mails it again."""


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
        "account_notices": delete(AccountNoticeRecord).where(
            AccountNoticeRecord.accepted_at < now - NOTICE_RETENTION
        ),
    }
    deleted: dict[str, int] = {}
    for table, statement in statements.items():
        result = await session.execute(statement.execution_options(synchronize_session=False))
        deleted[table] = int(getattr(result, "rowcount", 0) or 0)
    return deleted


async def purge_expired_security_events(
    sessionmaker: async_sessionmaker[AsyncSession],
    *,
    now: datetime,
    retention_days: int,
    batch_size: int = 1000,
) -> int:
    """Delete security events (IP address, user agent) older than ``retention_days``: the
    register promises one year. Each batch is its own short transaction."""
    return await purge_created_before(
        sessionmaker,
        SecurityEvent,
        SecurityEvent.created_at,
        cutoff=now - timedelta(days=retention_days),
        batch_size=batch_size,
    )


async def purge_expired_staff_access_log(
    sessionmaker: async_sessionmaker[AsyncSession],
    *,
    now: datetime,
    retention_days: int,
    batch_size: int = 1000,
) -> int:
    """Delete staff access log entries older than ``retention_days``: the register promises
    audit logs five years. Entries of searches that found nobody belong to no account, so no
    account's purge takes them; this takes every entry, with or without an account."""
    return await purge_created_before(
        sessionmaker,
        StaffAccessLog,
        StaffAccessLog.created_at,
        cutoff=now - timedelta(days=retention_days),
        batch_size=batch_size,
    )


async def run_housekeeping(
    sessionmaker: async_sessionmaker[AsyncSession], settings: IdentitySettings, *, now: datetime
) -> dict[str, int]:
    """Everything ``purge-expired`` deletes; returns the rows deleted per table."""
    async with sessionmaker() as session:
        deleted = await purge_expired(session, now)
        await session.commit()
    deleted["security_events"] = await purge_expired_security_events(
        sessionmaker,
        now=now,
        retention_days=settings.security_event_retention_days,
    )
    deleted["staff_access_log"] = await purge_expired_staff_access_log(
        sessionmaker,
        now=now,
        retention_days=settings.audit_log_retention_days,
    )
    deleted["idempotency_keys"] = await purge_expired_keys(sessionmaker, IdempotencyKey, now=now)
    return deleted
