"""A shipment's status history, a page at a time, in the order the events happened.

The keyset is ``(occurred_at, id)``, served by ``ix_shipment_events_shipment_id_occurred_at_id``:
a carrier may report an event late, so the history is ordered by when it happened, not by
when it was recorded (which is what the UUIDv7 ``id`` alone would give).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.errors import ValidationFailed
from libs.common.pagination import PageParams, decode_cursor, encode_cursor
from services.shipping_api.models import ShipmentEvent


def _position(cursor: str) -> tuple[datetime, uuid.UUID]:
    values = decode_cursor(cursor)
    try:
        occurred_at = datetime.fromisoformat(str(values["occurred_at"]))
        event_id = uuid.UUID(str(values["id"]))
    except (KeyError, ValueError) as exc:
        raise ValidationFailed.for_field(
            "cursor", "not a cursor from this API", location="query"
        ) from exc
    if occurred_at.tzinfo is None:
        raise ValidationFailed.for_field("cursor", "not a cursor from this API", location="query")
    return occurred_at, event_id


async def page_events(
    session: AsyncSession, shipment_id: uuid.UUID, params: PageParams
) -> tuple[Sequence[ShipmentEvent], str | None]:
    """Oldest first; returns the page's events and the cursor of the next page."""
    statement = select(ShipmentEvent).where(ShipmentEvent.shipment_id == shipment_id)
    if params.cursor is not None:
        occurred_at, event_id = _position(params.cursor)
        # A row comparison, so the index seeks to the cursor instead of reading (and filtering
        # out) every earlier event of the shipment.
        statement = statement.where(
            tuple_(ShipmentEvent.occurred_at, ShipmentEvent.id) > (occurred_at, event_id)
        )
    statement = statement.order_by(ShipmentEvent.occurred_at, ShipmentEvent.id).limit(
        params.limit + 1
    )
    events = (await session.scalars(statement)).all()
    if len(events) <= params.limit:
        return events, None
    events = events[: params.limit]
    last = events[-1]
    return events, encode_cursor({"occurred_at": last.occurred_at.isoformat(), "id": str(last.id)})
