"""The shipping vocabulary: carriers, delivery services, statuses and the status machine.

Names are the contract of ARCHITECTURE.md; every other module imports them from here.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal


class Carrier(StrEnum):
    POSTNL = "postnl"
    DHL = "dhl"
    DPD = "dpd"
    GLS = "gls"
    UPS = "ups"


class DeliveryService(StrEnum):
    STANDARD = "standard"
    SIGNATURE = "signature"
    EVENING = "evening"
    MAILBOX = "mailbox"
    PICKUP_POINT = "pickup_point"


class ShipmentMode(StrEnum):
    LIVE = "live"
    TEST = "test"
    """Made with a ``pp_test_`` key: never handed to a carrier, moved by ``/simulate``."""


class ShipmentStatus(StrEnum):
    CREATED = "created"
    LABEL_PRINTED = "label_printed"
    HANDED_TO_CARRIER = "handed_to_carrier"
    IN_TRANSIT = "in_transit"
    OUT_FOR_DELIVERY = "out_for_delivery"
    DELIVERED = "delivered"
    DELIVERY_FAILED = "delivery_failed"
    RETURNED_TO_SENDER = "returned_to_sender"
    CANCELLED = "cancelled"


S = ShipmentStatus

FINAL_STATUSES: frozenset[ShipmentStatus] = frozenset(
    {S.DELIVERED, S.RETURNED_TO_SENDER, S.CANCELLED}
)
"""Statuses after which nothing happens any more; the retention period starts here."""

CARRIER_STATUSES: frozenset[ShipmentStatus] = frozenset(S) - {
    S.CREATED,
    S.LABEL_PRINTED,
    S.CANCELLED,
}
"""The statuses a carrier reports; the others are ours and come before any carrier's scan."""

CANCELLABLE_STATUSES: frozenset[ShipmentStatus] = frozenset({S.CREATED, S.LABEL_PRINTED})
"""A shipment can be cancelled only before the carrier has it."""

TRANSITIONS: dict[ShipmentStatus, frozenset[ShipmentStatus]] = {
    S.CREATED: frozenset({S.LABEL_PRINTED, S.HANDED_TO_CARRIER, S.CANCELLED}),
    S.LABEL_PRINTED: frozenset({S.HANDED_TO_CARRIER, S.CANCELLED}),
    S.HANDED_TO_CARRIER: frozenset(
        {S.IN_TRANSIT, S.OUT_FOR_DELIVERY, S.DELIVERED, S.RETURNED_TO_SENDER}
    ),
    # A parcel passes several sorting centres: in_transit may repeat, each scan an event.
    S.IN_TRANSIT: frozenset(
        {S.IN_TRANSIT, S.OUT_FOR_DELIVERY, S.DELIVERED, S.DELIVERY_FAILED, S.RETURNED_TO_SENDER}
    ),
    S.OUT_FOR_DELIVERY: frozenset({S.DELIVERED, S.DELIVERY_FAILED}),
    # After a failed attempt: another round, collection at a pickup point, or back home.
    S.DELIVERY_FAILED: frozenset(
        {S.IN_TRANSIT, S.OUT_FOR_DELIVERY, S.DELIVERED, S.RETURNED_TO_SENDER}
    ),
    S.DELIVERED: frozenset(),
    S.RETURNED_TO_SENDER: frozenset(),
    S.CANCELLED: frozenset(),
}

HAPPY_PATH: dict[ShipmentStatus, ShipmentStatus] = {
    S.CREATED: S.LABEL_PRINTED,
    S.LABEL_PRINTED: S.HANDED_TO_CARRIER,
    S.HANDED_TO_CARRIER: S.IN_TRANSIT,
    S.IN_TRANSIT: S.OUT_FOR_DELIVERY,
    S.OUT_FOR_DELIVERY: S.DELIVERED,
    S.DELIVERY_FAILED: S.OUT_FOR_DELIVERY,
}
"""The next status ``/simulate`` moves a sandbox shipment to when none is named."""

RECIPIENT_MAIL_STATUSES: frozenset[ShipmentStatus] = frozenset(
    {S.HANDED_TO_CARRIER, S.OUT_FOR_DELIVERY, S.DELIVERED, S.DELIVERY_FAILED}
)
"""Statuses the recipient is e-mailed about."""

DELIVERY_NEEDS_MAIL: frozenset[ShipmentStatus] = frozenset({S.OUT_FOR_DELIVERY, S.DELIVERY_FAILED})
"""The messages delivery strictly needs (be home; collect or re-arrange a failed delivery):
the only ones a recipient who restricted or objected still gets (AVG art. 18 and 21)."""

STATUS_DESCRIPTIONS: dict[ShipmentStatus, str] = {
    S.CREATED: "Shipment registered",
    S.LABEL_PRINTED: "Label printed",
    S.HANDED_TO_CARRIER: "Handed to the carrier",
    S.IN_TRANSIT: "In transit",
    S.OUT_FOR_DELIVERY: "Out for delivery",
    S.DELIVERED: "Delivered",
    S.DELIVERY_FAILED: "Delivery attempt failed",
    S.RETURNED_TO_SENDER: "Returned to sender",
    S.CANCELLED: "Shipment cancelled",
}


def can_transition(current: ShipmentStatus, new: ShipmentStatus) -> bool:
    return new in TRANSITIONS[current]


class WebhookEvent(StrEnum):
    """Events a webhook endpoint can subscribe to: one per status a shipment can reach."""

    SHIPMENT_CREATED = "shipment.created"
    SHIPMENT_LABEL_PRINTED = "shipment.label_printed"
    SHIPMENT_HANDED_TO_CARRIER = "shipment.handed_to_carrier"
    SHIPMENT_IN_TRANSIT = "shipment.in_transit"
    SHIPMENT_OUT_FOR_DELIVERY = "shipment.out_for_delivery"
    SHIPMENT_DELIVERED = "shipment.delivered"
    SHIPMENT_DELIVERY_FAILED = "shipment.delivery_failed"
    SHIPMENT_RETURNED_TO_SENDER = "shipment.returned_to_sender"
    SHIPMENT_CANCELLED = "shipment.cancelled"

    @classmethod
    def for_status(cls, status: ShipmentStatus) -> WebhookEvent:
        return cls(f"shipment.{status.value}")


PingEvent = Literal["ping"]
PING_EVENT: PingEvent = "ping"
"""The event of a test delivery an account sends itself (``POST .../ping``): never subscribed
to, never about a shipment."""
