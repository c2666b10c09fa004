"""Erasing recipients' personal data from shipments, driven by the PII annotations: every
annotated column of the shipment and of what hangs off it (events, support notes, webhook
payloads, stored idempotent responses) is nulled or redacted, except what a legal obligation
retains. What stays: tracking code, status, dates, country, postcode area and price."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Table, update
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.db import among
from libs.common.idempotency import forget_keys
from libs.common.pii import erasure_values
from services.shipping_api.models import (
    IdempotencyKey,
    Shipment,
    ShipmentEvent,
    SupportAccess,
    SupportNote,
    WebhookDelivery,
)


def _table(model: Any) -> Table:
    table: Table = model.__table__
    return table


SHIPMENTS = _table(Shipment)
CHILD_TABLES: tuple[tuple[Table, str], ...] = (
    (_table(ShipmentEvent), "shipment_id"),
    (_table(SupportNote), "shipment_id"),
    (_table(SupportAccess), "shipment_id"),
    (_table(WebhookDelivery), "shipment_id"),
)


def _rowcount(result: object) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


def erased_recipient_values(now: datetime) -> dict[str, Any]:
    """What an erased shipment's columns are set to."""
    return erasure_values(SHIPMENTS) | {"recipient_erased_at": now, "updated_at": now}


async def erase_dependents(
    session: AsyncSession, shipment_ids: Sequence[uuid.UUID]
) -> dict[str, int]:
    """What hangs off these shipments (events, notes, access-log reasons, webhook payloads,
    stored idempotent answers): one UPDATE or DELETE per table for the whole batch."""
    ids = list(shipment_ids)
    erased: dict[str, int] = {}
    for table, column in CHILD_TABLES:
        child_values = erasure_values(table)
        if not child_values:
            continue
        result = await session.execute(
            update(table)
            .where(among(session, table.c[column], ids))
            .values(**child_values)
            .execution_options(synchronize_session=False)
        )
        erased[str(table.name)] = _rowcount(result)
    # Stored first responses of creates may hold the recipient.
    erased[IdempotencyKey.__tablename__] = await forget_keys(
        session, IdempotencyKey, resource_ids=ids
    )
    return erased


async def erase_shipments(
    session: AsyncSession, shipment_ids: Sequence[uuid.UUID], *, now: datetime
) -> dict[str, int]:
    """Set-based: one UPDATE per table for the whole batch. Idempotent."""
    if not shipment_ids:
        return {}
    ids = list(shipment_ids)
    result = await session.execute(
        update(SHIPMENTS)
        .where(among(session, SHIPMENTS.c.id, ids), SHIPMENTS.c.recipient_erased_at.is_(None))
        .values(**erased_recipient_values(now))
        .execution_options(synchronize_session=False)
    )
    return {str(SHIPMENTS.name): _rowcount(result)} | await erase_dependents(session, ids)
