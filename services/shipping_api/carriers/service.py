"""Status events pushed by carriers: recorded once, at the carrier's time; those that move the
status are checked against the status machine."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.shipping_api.carriers.schemas import CarrierEventIn, CarrierEventResult
from services.shipping_api.errors import ShipmentNotFound
from services.shipping_api.models import Shipment, ShipmentEvent
from services.shipping_api.shipments.lifecycle import EventSource, Outboxes, change_status
from services.shipping_api.shipments.tracking_codes import normalise_tracking_code
from services.shipping_api.vocabulary import Carrier, ShipmentMode, ShipmentStatus


async def _recorded(
    session: AsyncSession, carrier: Carrier, event_id: str
) -> CarrierEventResult | None:
    row = (
        await session.execute(
            select(ShipmentEvent.recorded_at, Shipment.status)
            .join(Shipment, Shipment.id == ShipmentEvent.shipment_id)
            .where(
                ShipmentEvent.carrier == carrier.value,
                ShipmentEvent.carrier_event_id == event_id,
            )
        )
    ).first()
    if row is None:
        return None
    return CarrierEventResult(duplicate=True, shipment_status=row[1], recorded_at=row[0])


async def record_carrier_event(
    session: AsyncSession,
    carrier: Carrier,
    event: CarrierEventIn,
    *,
    now: datetime,
    outboxes: Outboxes,
) -> CarrierEventResult:
    duplicate = await _recorded(session, carrier, event.event_id)
    if duplicate is not None:
        return duplicate
    code = normalise_tracking_code(event.tracking_code)
    shipment = (
        await session.scalar(
            select(Shipment)
            .where(
                Shipment.tracking_code == code,
                Shipment.carrier == carrier.value,
                # Sandbox shipments never reach a carrier.
                Shipment.mode == ShipmentMode.LIVE.value,
            )
            .with_for_update()
        )
        if code
        else None
    )
    if shipment is None:
        raise ShipmentNotFound(f"no {carrier.value} shipment with this tracking code")
    try:
        async with session.begin_nested():
            await change_status(
                session,
                shipment,
                ShipmentStatus(event.status.value),
                now=now,
                outboxes=outboxes,
                source=EventSource.CARRIER,
                occurred_at=event.occurred_at,
                city=event.city,
                description=event.description,
                carrier=carrier.value,
                carrier_event_id=event.event_id,
            )
    except IntegrityError:
        # The same event arrived twice at once; the other request recorded it.
        await session.refresh(shipment)
        return CarrierEventResult(duplicate=True, shipment_status=shipment.status, recorded_at=None)
    return CarrierEventResult(duplicate=False, shipment_status=shipment.status, recorded_at=now)
