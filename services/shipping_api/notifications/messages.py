"""The e-mails a recipient gets about their parcel (in Dutch: the recipients are in the
Netherlands). A recipient who restricted or objected gets only the delivery-essential ones, and
those without the shop's reference or anything beyond what delivery needs."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from services.shipping_api.carriers.catalogue import CARRIERS
from services.shipping_api.models import Shipment
from services.shipping_api.vocabulary import Carrier, ShipmentStatus

RECIPIENTS_TIME_ZONE = ZoneInfo("Europe/Amsterdam")
"""Where "vandaag" is: the recipients are in the Netherlands."""

SUBJECTS: dict[ShipmentStatus, str] = {
    ShipmentStatus.HANDED_TO_CARRIER: "Je pakket is onderweg",
    ShipmentStatus.OUT_FOR_DELIVERY: "Je pakket wordt vandaag bezorgd",
    ShipmentStatus.DELIVERED: "Je pakket is bezorgd",
    ShipmentStatus.DELIVERY_FAILED: "We konden je pakket niet bezorgen",
}

BODIES: dict[ShipmentStatus, str] = {
    ShipmentStatus.HANDED_TO_CARRIER: "{carrier} heeft je pakket in ontvangst genomen.",
    ShipmentStatus.OUT_FOR_DELIVERY: (
        "{carrier} bezorgt je pakket vandaag. Zorg dat er iemand thuis is om het aan te nemen."
    ),
    ShipmentStatus.DELIVERED: "{carrier} heeft je pakket bezorgd.",
    ShipmentStatus.DELIVERY_FAILED: (
        "{carrier} heeft geprobeerd je pakket te bezorgen, maar dat lukte niet. "
        "Kijk op de track & trace-pagina wat de volgende stap is."
    ),
}


STILL_TRUE_WHILE: dict[ShipmentStatus, frozenset[ShipmentStatus]] = {
    ShipmentStatus.HANDED_TO_CARRIER: frozenset(
        {ShipmentStatus.HANDED_TO_CARRIER, ShipmentStatus.IN_TRANSIT}
    ),
    ShipmentStatus.OUT_FOR_DELIVERY: frozenset({ShipmentStatus.OUT_FOR_DELIVERY}),
    ShipmentStatus.DELIVERED: frozenset({ShipmentStatus.DELIVERED}),
    ShipmentStatus.DELIVERY_FAILED: frozenset({ShipmentStatus.DELIVERY_FAILED}),
}
"""The shipment statuses in which a message still tells the truth ("onderweg" also holds in
transit); once the shipment has moved on, an unsent message is superseded (0207)."""


def is_still_true(
    message_status: ShipmentStatus, shipment: Shipment, queued_at: datetime, now: datetime
) -> bool:
    """Whether a message queued at ``queued_at`` may still be sent ``now``."""
    if ShipmentStatus(shipment.status) not in STILL_TRUE_WHILE[message_status]:
        return False
    if message_status is ShipmentStatus.OUT_FOR_DELIVERY:
        # "Je pakket wordt vandaag bezorgd" is untrue on any later day.
        today = now.astimezone(RECIPIENTS_TIME_ZONE).date()
        return queued_at.astimezone(RECIPIENTS_TIME_ZONE).date() == today
    return True


def compose(shipment: Shipment, status: ShipmentStatus, *, tracking_url: str) -> tuple[str, str]:
    """Subject and plain-text body."""
    carrier = CARRIERS[Carrier(shipment.carrier)].display_name
    greeting = f"Beste {shipment.recipient_name}," if shipment.recipient_name else "Hallo,"
    lines = [greeting, "", BODIES[status].format(carrier=carrier), ""]
    lines.append(f"Track & trace-code: {shipment.tracking_code}")
    lines.append(f"Volg je pakket: {tracking_url}")
    if not shipment.is_restricted and shipment.reference:
        lines.append(f"Referentie van de afzender: {shipment.reference}")
    lines += [
        "",
        "Je ontvangt dit bericht omdat een webwinkel dit pakket via Parcel Pro naar je verstuurt.",
        "Vragen over je privacy? privacy@parcelpro.nl",
    ]
    return f"{SUBJECTS[status]} ({shipment.tracking_code})", "\n".join(lines) + "\n"
