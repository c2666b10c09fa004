"""Putting shipment events into the durable webhook outbox (in the caller's transaction, so an
event is queued exactly when the change that caused it is committed)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.db import uuid7
from services.shipping_api.models import Shipment, ShipmentEvent, WebhookDelivery, WebhookEndpoint
from services.shipping_api.vocabulary import STATUS_DESCRIPTIONS, ShipmentStatus, WebhookEvent


class DeliveryState:
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"
    """Gave up: the retry window closed, or the endpoint or payload is gone."""


class EndpointDisabledReason(StrEnum):
    """Why the service switched an endpoint off (the account's own switch-off has none)."""

    FAILING = "failing"
    """Its deliveries had all failed for ``SHIPPING_WEBHOOK_DISABLE_AFTER_DAYS``."""


@dataclass(frozen=True, slots=True)
class ShipmentWebhookEvent:
    event: WebhookEvent
    shipment_id: uuid.UUID
    payload: dict[str, Any]


def shipment_event_data(
    *,
    shipment_id: uuid.UUID,
    tracking_code: str,
    reference: str | None,
    carrier: str,
    service: str,
    mode: str,
    status: str,
    occurred_at: datetime,
    city: str | None,
    description: str,
    is_restricted: bool,
    shipment_status: str | None = None,
) -> dict[str, Any]:
    """The ``data`` of a shipment's webhook event: its identifiers and the new status, no
    recipient. ``shipment_status`` is the shipment's status when it is not the event's (an event
    a carrier reported late, 0205).

    AVG art. 18/21 (0004): of a restricted shipment only what the webshop needs to run the
    delivery goes out: no reference, no city (the delivery scan's is the recipient's), and
    the status's own description instead of the carrier's text.
    """
    if is_restricted:
        reference, city = None, None
        description = STATUS_DESCRIPTIONS[ShipmentStatus(status)]
    return {
        "shipment": {
            "id": str(shipment_id),
            "tracking_code": tracking_code,
            "reference": reference,
            "carrier": carrier,
            "service": service,
            "status": shipment_status or status,
            "mode": mode,
        },
        "event": {
            "status": status,
            "occurred_at": occurred_at.isoformat(),
            "city": city,
            "description": description,
        },
    }


def shipment_event_payload(shipment: Shipment, event: ShipmentEvent) -> dict[str, Any]:
    """The ``data`` of the webhook event of a status change (``shipment_event_data``); of a
    shipment whose recipient is erased in the restricted form (0208), like a restricted one."""
    return shipment_event_data(
        shipment_id=shipment.id,
        tracking_code=shipment.tracking_code,
        reference=shipment.reference,
        carrier=shipment.carrier,
        service=shipment.service,
        mode=shipment.mode,
        status=event.status,
        occurred_at=event.occurred_at,
        city=event.city,
        description=event.description,
        is_restricted=shipment.is_restricted or shipment.recipient_erased_at is not None,
        shipment_status=shipment.status,
    )


async def enqueue_webhooks(
    session: AsyncSession,
    *,
    account_id: uuid.UUID,
    events: Sequence[ShipmentWebhookEvent],
    now: datetime,
    retry_window: timedelta,
) -> int:
    """Queue one delivery per event and subscribed endpoint of the account."""
    if not events:
        return 0
    # FOR KEY SHARE: an endpoint deleted at the same moment either is gone before we read it
    # or waits for this transaction; otherwise its deletion could commit between this read and
    # the insert below, which then fails its foreign key (a 500 on the status change).
    endpoints = (
        await session.execute(
            select(WebhookEndpoint.id, WebhookEndpoint.events)
            .where(WebhookEndpoint.account_id == account_id, WebhookEndpoint.is_active.is_(True))
            .with_for_update(read=True, key_share=True)
        )
    ).all()
    if not endpoints:
        return 0
    rows: list[dict[str, Any]] = []
    for endpoint_id, subscribed in endpoints:
        wanted = set(subscribed or [])
        for item in events:
            if item.event.value not in wanted:
                continue
            delivery_id = uuid7()
            rows.append(
                {
                    "id": delivery_id,
                    "endpoint_id": endpoint_id,
                    "account_id": account_id,
                    "shipment_id": item.shipment_id,
                    "event": item.event.value,
                    "payload": {
                        "id": str(delivery_id),
                        "type": item.event.value,
                        "created_at": now.isoformat(),
                        "data": item.payload,
                    },
                    "state": DeliveryState.PENDING,
                    "attempts": 0,
                    "next_attempt_at": now,
                    "give_up_at": now + retry_window,
                    "created_at": now,
                }
            )
    if rows:
        await session.execute(insert(WebhookDelivery), rows)
    return len(rows)
