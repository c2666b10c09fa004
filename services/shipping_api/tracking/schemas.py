"""The public track & trace answer: status and dates; events and city only with the postcode."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from services.shipping_api.vocabulary import Carrier, DeliveryService, ShipmentStatus


class TrackingEvent(BaseModel):
    status: ShipmentStatus
    occurred_at: datetime
    city: str | None = Field(description="City only.")
    description: str


class TrackingRead(BaseModel):
    tracking_code: str
    carrier: Carrier
    service: DeliveryService
    status: ShipmentStatus
    registered_at: datetime
    status_changed_at: datetime
    delivered_at: datetime | None
    postcode_verified: bool = Field(
        description="True when `?postcode=` matched the recipient's: `city` and `events` follow."
    )
    city: str | None = Field(None, description="The destination city (with the postcode only).")
    events: list[TrackingEvent] | None = Field(
        None, description="The history (with the postcode only)."
    )
