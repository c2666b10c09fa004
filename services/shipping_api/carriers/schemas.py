"""Status events carriers push to us."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from libs.common.validation import AwareTimestamp, City
from services.shipping_api.vocabulary import ShipmentStatus


class CarrierStatus(StrEnum):
    """What a carrier can report (labels, cancellations and creations are ours)."""

    HANDED_TO_CARRIER = ShipmentStatus.HANDED_TO_CARRIER.value
    IN_TRANSIT = ShipmentStatus.IN_TRANSIT.value
    OUT_FOR_DELIVERY = ShipmentStatus.OUT_FOR_DELIVERY.value
    DELIVERED = ShipmentStatus.DELIVERED.value
    DELIVERY_FAILED = ShipmentStatus.DELIVERY_FAILED.value
    RETURNED_TO_SENDER = ShipmentStatus.RETURNED_TO_SENDER.value


class CarrierEventIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "event_id": "scan-000123456",
                    "tracking_code": "PP7K3QX9M2T4HWB",
                    "status": "in_transit",
                    "occurred_at": "2026-11-25T14:03:00Z",
                    "city": "Nieuwegein",
                    "description": "Sorted at the distribution centre",
                }
            ]
        },
    )

    event_id: str = Field(
        min_length=1, max_length=100, description="Your id of the event: a resend is ignored."
    )
    tracking_code: str = Field(max_length=32)
    status: CarrierStatus
    occurred_at: AwareTimestamp = Field(
        description="When it happened by your clock: the event takes its place in the history "
        "by this time, also when it is sent late."
    )
    city: City | None = Field(None, description="Where it happened: the city only.")
    description: str | None = Field(None, max_length=500)


class CarrierEventResult(BaseModel):
    duplicate: bool = Field(description="True when this event id was processed before.")
    shipment_status: str
    recorded_at: datetime | None
