"""Public track & trace. Anyone with a tracking code sees status and dates; whoever also knows
the recipient's postcode sees the history and the city. Never a name, street, e-mail or phone."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.validation import normalise_postcode
from services.shipping_api.errors import ShipmentNotFound
from services.shipping_api.models import Shipment
from services.shipping_api.shipments import repository
from services.shipping_api.shipments.tracking_codes import normalise_tracking_code
from services.shipping_api.tracking.schemas import TrackingEvent, TrackingRead
from services.shipping_api.vocabulary import (
    STATUS_DESCRIPTIONS,
    Carrier,
    DeliveryService,
    ShipmentStatus,
)

NOT_FOUND = "No parcel with this tracking code."


async def find(session: AsyncSession, tracking_code: str) -> Shipment:
    code = normalise_tracking_code(tracking_code)
    # A code failing its check character is answered exactly like an unknown one.
    shipment = await repository.get_by_tracking_code(session, code) if code else None
    if shipment is None:
        raise ShipmentNotFound(NOT_FOUND)
    return shipment


def postcode_matches(shipment: Shipment, postcode: str) -> bool:
    if not shipment.recipient_postcode:
        return False
    try:
        given = normalise_postcode(postcode, shipment.country_code)
    except ValueError:
        return False
    return given.replace(" ", "") == shipment.recipient_postcode.replace(" ", "")


async def tracking_view(
    session: AsyncSession, shipment: Shipment, *, postcode_verified: bool
) -> TrackingRead:
    status = ShipmentStatus(shipment.status)
    view = TrackingRead(
        tracking_code=shipment.tracking_code,
        carrier=Carrier(shipment.carrier),
        service=DeliveryService(shipment.service),
        status=status,
        registered_at=shipment.created_at,
        status_changed_at=shipment.status_changed_at,
        delivered_at=shipment.final_at if status is ShipmentStatus.DELIVERED else None,
        postcode_verified=postcode_verified,
    )
    if postcode_verified:
        events = await repository.events_of(session, shipment.id)
        view.city = shipment.recipient_city
        # Our own wording, not the carrier's free text (which may name people).
        view.events = [
            TrackingEvent(
                status=ShipmentStatus(event.status),
                occurred_at=event.occurred_at,
                city=event.city,
                description=STATUS_DESCRIPTIONS[ShipmentStatus(event.status)],
            )
            for event in events
        ]
    return view
