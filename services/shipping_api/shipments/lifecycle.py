"""The status machine in action: every change checked, recorded as an event, and announced
(webhooks to the account, e-mail to the recipient) through the durable outboxes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.db import uuid7
from services.shipping_api.errors import IllegalTransition
from services.shipping_api.models import Shipment, ShipmentEvent
from services.shipping_api.notifications.outbox import enqueue_recipient_mail
from services.shipping_api.tracking.cache import TrackingCache
from services.shipping_api.vocabulary import (
    FINAL_STATUSES,
    RECIPIENT_MAIL_STATUSES,
    STATUS_DESCRIPTIONS,
    ShipmentMode,
    ShipmentStatus,
    WebhookEvent,
    can_transition,
)
from services.shipping_api.webhooks.outbox import (
    ShipmentWebhookEvent,
    enqueue_webhooks,
    shipment_event_payload,
)


class EventSource:
    API = "api"
    CARRIER = "carrier"
    SIMULATION = "simulation"


@dataclass(frozen=True, slots=True)
class Outboxes:
    """What follows a status change: how long the outboxes keep retrying (from settings), and
    the public tracking answers to forget."""

    webhook_retry: timedelta
    mail_retry: timedelta
    tracking_cache: TrackingCache | None = None


async def change_status(
    session: AsyncSession,
    shipment: Shipment,
    new_status: ShipmentStatus,
    *,
    now: datetime,
    outboxes: Outboxes,
    source: str,
    occurred_at: datetime | None = None,
    city: str | None = None,
    description: str | None = None,
    carrier: str | None = None,
    carrier_event_id: str | None = None,
) -> ShipmentEvent:
    current = ShipmentStatus(shipment.status)
    if not can_transition(current, new_status):
        raise IllegalTransition(
            f"a shipment that is {current.value} cannot become {new_status.value}"
        )
    event = ShipmentEvent(
        id=uuid7(),
        shipment_id=shipment.id,
        status=new_status.value,
        occurred_at=occurred_at or now,
        recorded_at=now,
        city=city,
        description=description or STATUS_DESCRIPTIONS[new_status],
        source=source,
        carrier=carrier,
        carrier_event_id=carrier_event_id,
    )
    session.add(event)
    shipment.status = new_status.value
    if outboxes.tracking_cache is not None:
        outboxes.tracking_cache.forget(shipment.tracking_code)
    shipment.status_changed_at = now
    shipment.updated_at = now
    if new_status in FINAL_STATUSES:
        shipment.final_at = now
    await session.flush()
    await enqueue_webhooks(
        session,
        account_id=shipment.account_id,
        events=[
            ShipmentWebhookEvent(
                WebhookEvent.for_status(new_status),
                shipment.id,
                shipment_event_payload(shipment, event),
            )
        ],
        now=now,
        retry_window=outboxes.webhook_retry,
    )
    # Sandbox shipments never reach a real person's mailbox.
    if (
        new_status in RECIPIENT_MAIL_STATUSES
        and shipment.recipient_email
        and shipment.mode == ShipmentMode.LIVE.value
    ):
        await enqueue_recipient_mail(
            session,
            shipment_id=shipment.id,
            status=new_status,
            now=now,
            retry_window=outboxes.mail_retry,
        )
    return event
