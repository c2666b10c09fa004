"""Delivered parcels per postcode area: counts only, never below k, never of subjects who
restricted or objected (privacy statement, "rapportages ... het aantal pakketten dat bezorgd
is in een bepaald postcodegebied"; AVG art. 18 and 21)."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.shipping_api.models import Shipment
from services.shipping_api.reports.schemas import AreaCount, DeliveriesByPostcodeArea
from services.shipping_api.vocabulary import ShipmentMode, ShipmentStatus

K_ANONYMITY = 10


async def deliveries_by_postcode_area(
    session: AsyncSession,
    *,
    period_from: date,
    period_to: date,
    account_id: uuid.UUID | None,
) -> DeliveriesByPostcodeArea:
    start = datetime.combine(period_from, time.min, tzinfo=UTC)
    end = datetime.combine(period_to + timedelta(days=1), time.min, tzinfo=UTC)
    shipments = func.count(Shipment.id)
    statement = (
        select(
            Shipment.country_code,
            Shipment.postcode_area,
            shipments,
            func.sum(Shipment.parcel_count),
        )
        .where(
            Shipment.status == ShipmentStatus.DELIVERED.value,
            Shipment.final_at >= start,
            Shipment.final_at < end,
            Shipment.mode == ShipmentMode.LIVE.value,
            Shipment.is_restricted.is_(False),
            Shipment.postcode_area.is_not(None),
        )
        .group_by(Shipment.country_code, Shipment.postcode_area)
    )
    if account_id is not None:
        statement = statement.where(Shipment.account_id == account_id)
    rows = (await session.execute(statement)).all()
    shown = sorted((row for row in rows if row[2] >= K_ANONYMITY), key=lambda row: (row[0], row[1]))
    return DeliveriesByPostcodeArea(
        **{"from": period_from, "to": period_to},
        scope="platform" if account_id is None else "account",
        k=K_ANONYMITY,
        areas=[
            AreaCount(
                country=country, postcode_area=area, shipments=count, delivered_parcels=parcels
            )
            for country, area, count, parcels in shown
        ],
        suppressed_areas=len(rows) - len(shown),
    )
