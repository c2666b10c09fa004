"""Sending the recipient mail outbox: each message is written at sending time from the
shipment as it is then (erased, restricted, moved on), retried with backoff, given up after its
window."""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from urllib.parse import quote

import structlog
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from libs.common.db import retry_while_unavailable
from libs.common.mail import Mailer, OutgoingMail
from libs.common.outbox import claim_due
from services.shipping_api.models import RecipientMail, Shipment
from services.shipping_api.notifications.messages import compose, is_still_true
from services.shipping_api.notifications.outbox import MailState
from services.shipping_api.vocabulary import DELIVERY_NEEDS_MAIL, ShipmentStatus
from services.shipping_api.webhooks.delivery import next_attempt

log = structlog.get_logger("recipient_mail")


class RecipientMailSender:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        mailer: Mailer,
        *,
        public_base_url: str,
        tracking_page_url: str = "",
        batch_size: int = 50,
        lease: timedelta = timedelta(minutes=2),
    ) -> None:
        """``tracking_page_url``: the recipients' page, with ``{tracking_code}`` and optionally
        ``{postcode}``; empty links to the public API's tracking answer instead."""
        self.sessionmaker = sessionmaker
        self.mailer = mailer
        self.tracking_page_url = tracking_page_url or (
            public_base_url.rstrip("/") + "/v1/tracking/{tracking_code}?postcode={postcode}"
        )
        self.batch_size = batch_size
        self.lease = lease

    async def run_once(self, now: datetime) -> int:
        claimed = await self._claim(now)
        # While the database restarts, reading a claimed message and recording that it was
        # sent are retried within the lease: a lost record would send the mail twice.
        deadline = time.monotonic() + self.lease.total_seconds() - 5
        for mail_id in claimed:
            await self._send(mail_id, now, deadline)
        return len(claimed)

    async def _claim(self, now: datetime) -> Sequence[uuid.UUID]:
        return await claim_due(
            self.sessionmaker,
            RecipientMail,
            RecipientMail.state == MailState.PENDING,
            now=now,
            lease=self.lease,
            limit=self.batch_size,
        )

    async def _send(self, mail_id: uuid.UUID, now: datetime, deadline: float) -> None:
        async def read() -> tuple[RecipientMail, Shipment] | None:
            async with self.sessionmaker() as session:
                row = (
                    await session.execute(
                        select(RecipientMail, Shipment)
                        .join(Shipment, Shipment.id == RecipientMail.shipment_id)
                        .where(RecipientMail.id == mail_id)
                    )
                ).first()
            return (row[0], row[1]) if row is not None else None

        found = await retry_while_unavailable(read, within=deadline - time.monotonic())
        if found is None:
            return
        mail, shipment = found
        status = ShipmentStatus(mail.status)
        values: dict[str, object] = {"attempts": mail.attempts + 1}
        if not shipment.recipient_email:
            values |= {"state": MailState.SKIPPED, "last_error": "no address (erased)"}
        elif not is_still_true(status, shipment, mail.created_at, now):
            # A retry or a backlog must not tell the recipient something no longer true.
            values |= {"state": MailState.SUPERSEDED, "last_error": None}
        elif shipment.is_restricted and status not in DELIVERY_NEEDS_MAIL:
            # AVG art. 18 and 21: nothing beyond what delivery strictly needs.
            values |= {"state": MailState.SKIPPED, "last_error": "recipient restricted"}
        else:
            subject, text = compose(
                shipment,
                status,
                tracking_url=self.tracking_url(shipment),
            )
            try:
                await self.mailer.send(
                    OutgoingMail(to=shipment.recipient_email, subject=subject, text=text)
                )
            except Exception as exc:
                retry_at = next_attempt(now, mail.attempts + 1)
                error = f"{type(exc).__name__}"[:300]
                if retry_at > mail.give_up_at:
                    values |= {"state": MailState.FAILED, "last_error": error}
                else:
                    values |= {"next_attempt_at": retry_at, "last_error": error}
                log.warning("recipient_mail_failed", mail_id=str(mail_id), error=error)
            else:
                values |= {"state": MailState.SENT, "sent_at": now, "last_error": None}
        if values.get("state") in {
            MailState.SENT,
            MailState.SKIPPED,
            MailState.SUPERSEDED,
            MailState.FAILED,
        }:
            values["next_attempt_at"] = None

        async def write() -> None:
            async with self.sessionmaker() as session:
                await session.execute(
                    update(RecipientMail).where(RecipientMail.id == mail_id).values(**values)
                )
                await session.commit()

        await retry_while_unavailable(write, within=deadline - time.monotonic())

    def tracking_url(self, shipment: Shipment) -> str:
        # The recipient's own postcode, mailed to the recipient: it opens the event history
        # without typing, and tells whoever reads the mail nothing the mail does not.
        return self.tracking_page_url.format(
            tracking_code=shipment.tracking_code,
            postcode=quote((shipment.recipient_postcode or "").replace(" ", ""), safe=""),
        )
