"""Putting recipient e-mails into the durable mail outbox (in the caller's transaction)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.db import uuid7
from services.shipping_api.models import RecipientMail
from services.shipping_api.vocabulary import ShipmentStatus


class MailState:
    PENDING = "pending"
    SENT = "sent"
    SKIPPED = "skipped"
    """Not sent on purpose: erased address, or a restricted recipient and a message delivery
    does not need."""
    SUPERSEDED = "superseded"
    """Not sent because no longer true by sending time: the shipment moved on, or the day of a
    "vandaag bezorgd" message has passed (0207)."""
    FAILED = "failed"


async def enqueue_recipient_mail(
    session: AsyncSession,
    *,
    shipment_id: uuid.UUID,
    status: ShipmentStatus,
    now: datetime,
    retry_window: timedelta,
) -> None:
    await session.execute(
        insert(RecipientMail).values(
            id=uuid7(),
            shipment_id=shipment_id,
            status=status.value,
            state=MailState.PENDING,
            attempts=0,
            next_attempt_at=now,
            give_up_at=now + retry_window,
            created_at=now,
        )
    )
