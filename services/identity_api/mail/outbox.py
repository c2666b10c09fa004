"""The mail outbox: a message is written in the same transaction as what caused it and
delivered afterwards by a background task, with retries, so a mail-server outage delays mail
but loses none, and a rolled-back request sends nothing.

Claiming sets a lease (``next_attempt_at`` in the future) before sending, so several processes
can deliver side by side without sending a message twice; a process that dies mid-send leaves
the message to be retried when the lease ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta

import structlog
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from libs.common.clock import Clock
from libs.common.mail import Mailer, OutgoingMail
from libs.common.outbox import backoff as outbox_backoff
from services.identity_api.models import OutboxMail

log = structlog.get_logger("mail_outbox")

LEASE = timedelta(minutes=2)
FIRST_BACKOFF = timedelta(seconds=30)
MAX_BACKOFF = timedelta(hours=1)


async def enqueue(
    session: AsyncSession,
    mail: OutgoingMail,
    *,
    now: datetime,
    account_id: uuid.UUID | None = None,
) -> None:
    session.add(
        OutboxMail(
            account_id=account_id,
            to_address=mail.to,
            subject=mail.subject,
            body_text=mail.text,
            created_at=now,
            attempts=0,
            next_attempt_at=now,
        )
    )
    await session.flush()


def backoff(attempts: int) -> timedelta:
    """30 s, 1 min, 2 min ... capped at an hour: a day-long outage costs ~25 attempts."""
    return outbox_backoff(attempts, first=FIRST_BACKOFF, cap=MAX_BACKOFF)


class OutboxDelivery:
    def __init__(
        self,
        sessionmaker: Callable[[], async_sessionmaker[AsyncSession]],
        mailer: Callable[[], Mailer],
        clock: Callable[[], Clock],
        *,
        max_attempts: int,
        batch_size: int = 20,
    ) -> None:
        # Looked up at each use: tests replace the mailer or clock on a running app.
        self._sessionmaker = sessionmaker
        self._mailer = mailer
        self._clock = clock
        self.max_attempts = max_attempts
        self.batch_size = batch_size

    async def _claim(self) -> list[OutboxMail]:
        now = self._clock().now()
        async with self._sessionmaker()() as session:
            due = (
                select(OutboxMail.id)
                .where(
                    OutboxMail.sent_at.is_(None),
                    OutboxMail.failed_at.is_(None),
                    OutboxMail.next_attempt_at <= now,
                )
                .order_by(OutboxMail.next_attempt_at)
                .limit(self.batch_size)
                .with_for_update(skip_locked=True)
            )
            ids = list((await session.scalars(due)).all())
            if not ids:
                return []
            await session.execute(
                update(OutboxMail)
                .where(OutboxMail.id.in_(ids))
                .values(next_attempt_at=now + LEASE, attempts=OutboxMail.attempts + 1)
            )
            rows = list(
                (await session.scalars(select(OutboxMail).where(OutboxMail.id.in_(ids)))).all()
            )
            await session.commit()
        return rows

    async def deliver_due(self) -> int:
        """Send every message that is due; returns how many were delivered."""
        delivered = 0
        while True:
            claimed = await self._claim()
            if not claimed:
                return delivered
            for message in claimed:
                delivered += await self._deliver(message)
            if len(claimed) < self.batch_size:
                return delivered

    async def _deliver(self, message: OutboxMail) -> int:
        mail = OutgoingMail(to=message.to_address, subject=message.subject, text=message.body_text)
        try:
            await self._mailer().send(mail)
        except Exception as exc:
            now = self._clock().now()
            gave_up = message.attempts >= self.max_attempts
            log.warning(
                "mail_delivery_failed",
                mail_id=str(message.id),
                attempts=message.attempts,
                gave_up=gave_up,
                error=type(exc).__name__,
            )
            async with self._sessionmaker()() as session:
                await session.execute(
                    update(OutboxMail)
                    .where(OutboxMail.id == message.id)
                    .values(
                        next_attempt_at=now + backoff(message.attempts),
                        failed_at=now if gave_up else None,
                        last_error=f"{type(exc).__name__}: {exc}"[:500],
                    )
                )
                await session.commit()
            return 0
        # Delivered: the body (it may hold a single-use link) has no reason to stay.
        async with self._sessionmaker()() as session:
            await session.execute(delete(OutboxMail).where(OutboxMail.id == message.id))
            await session.commit()
        return 1

    async def run(self, poll_seconds: float, stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            try:
                await self.deliver_due()
            except Exception:
                log.exception("mail_outbox_error")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), timeout=poll_seconds)


@contextlib.asynccontextmanager
async def delivering(delivery: OutboxDelivery, poll_seconds: float) -> AsyncIterator[None]:
    stopping = asyncio.Event()
    task = asyncio.create_task(delivery.run(poll_seconds, stopping), name="mail-outbox")
    try:
        yield
    finally:
        stopping.set()
        await task
