"""Queue mail with the transaction that decides it; send it (at least once) afterwards."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from functools import partial

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from libs.common.clock import Clock
from libs.common.db import retry_while_unavailable
from libs.common.mail import Mailer, OutgoingMail
from services.privacy_api.models import MailOutbox
from services.privacy_api.outbox import repository

log = structlog.get_logger("outbox")

LEASE = timedelta(minutes=5)
MAX_BACKOFF = timedelta(hours=1)


async def enqueue(
    session: AsyncSession,
    mail: OutgoingMail,
    *,
    now: datetime,
    privacy_request_id: uuid.UUID | None = None,
) -> None:
    await repository.add(
        session,
        MailOutbox(
            recipient=mail.to,
            subject=mail.subject,
            body=mail.text,
            privacy_request_id=privacy_request_id,
            created_at=now,
            next_attempt_at=now,
            attempts=0,
        ),
    )


async def send_due(
    sessionmaker: async_sessionmaker[AsyncSession], mailer: Mailer, clock: Clock, *, owner: str
) -> int:
    """Send what is due; returns the number sent. A failed send is retried with backoff."""
    async with sessionmaker() as session, session.begin():
        claimed = await repository.claim_due(session, owner=owner, now=clock.now(), lease=LEASE)
    sent = 0
    for message in claimed:
        try:
            await mailer.send(
                OutgoingMail(to=message.recipient, subject=message.subject, text=message.body)
            )
        except Exception as exc:
            delay = min(timedelta(seconds=30 * 2**message.attempts), MAX_BACKOFF)
            log.warning("mail_send_failed", message_id=str(message.id), error=type(exc).__name__)
            mark = partial(
                repository.mark_retry,
                message_id=message.id,
                owner=owner,
                at=clock.now() + delay,
                error=repr(exc),
            )
            await _record(sessionmaker, mark)
            continue
        await _record(
            sessionmaker,
            partial(repository.mark_sent, message_id=message.id, owner=owner, now=clock.now()),
        )
        sent += 1
    return sent


async def _record(
    sessionmaker: async_sessionmaker[AsyncSession],
    mark: Callable[[AsyncSession], Awaitable[None]],
) -> None:
    """Record an outcome, retried through a database restart within the lease: a lost "sent"
    would send the mail again."""

    async def write() -> None:
        async with sessionmaker() as session, session.begin():
            await mark(session)

    await retry_while_unavailable(write, within=LEASE.total_seconds() - 5)


async def purge_sent(sessionmaker: async_sessionmaker[AsyncSession], *, before: datetime) -> int:
    async with sessionmaker() as session, session.begin():
        return await repository.purge_sent_before(session, before)
