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
    CARRIER_STATUSES,
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
    # A carrier's clock may run ahead of ours: nothing is recorded as happening in the future.
    occurred_at = min(occurred_at or now, now)
    current = ShipmentStatus(shipment.status)
    # 0205: a carrier that reports late (a batch upload, a scanner that was offline) puts the
    # event in its place in the history; the status follows the latest event by the carrier's
    # time, so an event older than the one the status came from changes nothing else. Our own
    # statuses precede every scan, so against them an event is never late.
    is_late = current in CARRIER_STATUSES and occurred_at < shipment.status_changed_at
    if not is_late and not can_transition(current, new_status):
        raise IllegalTransition(
            f"a shipment that is {current.value} cannot become {new_status.value}"
        )
    if shipment.recipient_erased_at is not None:
        # 0208: an event after the erasure moves the shipment on without a recipient: the
        # delivery scan's city is the recipient's, and the carrier's text may name them.
        city, description = None, None
    event = ShipmentEvent(
        id=uuid7(),
        shipment_id=shipment.id,
        status=new_status.value,
        occurred_at=occurred_at,
        recorded_at=now,
        city=city,
        description=description or STATUS_DESCRIPTIONS[new_status],
        source=source,
        carrier=carrier,
        carrier_event_id=carrier_event_id,
    )
    session.add(event)
    if outboxes.tracking_cache is not None:
        outboxes.tracking_cache.forget(shipment.tracking_code)
    shipment.updated_at = now
    if not is_late:
        shipment.status = new_status.value
        shipment.status_changed_at = occurred_at
        if new_status in FINAL_STATUSES:
            shipment.final_at = occurred_at
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
    # Sandbox shipments never reach a real person's mailbox; a late event is history, not news
    # for the recipient.
    if (
        not is_late
        and new_status in RECIPIENT_MAIL_STATUSES
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
