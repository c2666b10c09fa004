"""Queries over shipments, their parcels and their events."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from sqlalchemy import RowMapping, Select, bindparam, insert, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.shipping_api.models import Parcel, Shipment, ShipmentEvent, SubjectRestriction
from services.shipping_api.shipments.schemas import ShipmentFilters


async def get(session: AsyncSession, shipment_id: uuid.UUID) -> Shipment | None:
    return await session.get(Shipment, shipment_id)


async def get_for_account(
    session: AsyncSession, shipment_id: uuid.UUID, account_id: uuid.UUID | None
) -> Shipment | None:
    """``account_id`` None: any account's (staff, audited by the caller)."""
    statement = select(Shipment).where(Shipment.id == shipment_id)
    if account_id is not None:
        statement = statement.where(Shipment.account_id == account_id)
    return await session.scalar(statement)


_WITH_PARCELS = (
    select(Shipment, Parcel)
    .join(Parcel, Parcel.shipment_id == Shipment.id)
    .where(Shipment.id == bindparam("shipment_id"))
    .order_by(Parcel.sequence)
)
# Built once: this read runs on every GET of a shipment, and composing the expression per
# request cost more than the query's own round trip.
_WITH_PARCELS_OF_ACCOUNT = _WITH_PARCELS.where(Shipment.account_id == bindparam("account_id"))

# What a shipment's document (``GET /v1/shipments/{id}``) is made of: one row per parcel,
# plain columns instead of ORM objects, so it can also be read without the ORM
# (``shipments.fastpath``).
_DOCUMENT = (
    select(
        Shipment.id,
        Shipment.account_id,
        Shipment.reference,
        Shipment.carrier,
        Shipment.service,
        Shipment.status,
        Shipment.tracking_code,
        Shipment.mode,
        Shipment.recipient_name,
        Shipment.recipient_contact_person,
        Shipment.recipient_street,
        Shipment.recipient_house_number,
        Shipment.recipient_postcode,
        Shipment.recipient_city,
        Shipment.recipient_country,
        Shipment.recipient_email,
        Shipment.recipient_phone,
        Shipment.recipient_erased_at,
        Shipment.parcel_count,
        Shipment.price_cents,
        Shipment.currency,
        Shipment.created_at,
        Shipment.updated_at,
        Shipment.status_changed_at,
        Parcel.sequence,
        Parcel.weight_grams,
        Parcel.length_cm,
        Parcel.width_cm,
        Parcel.height_cm,
    )
    .join(Parcel, Parcel.shipment_id == Shipment.id)
    .where(Shipment.id == bindparam("shipment_id"))
    .order_by(Parcel.sequence)
)
DOCUMENT_OF_ACCOUNT = _DOCUMENT.where(Shipment.account_id == bindparam("account_id"))


async def document_rows(
    session: AsyncSession, shipment_id: uuid.UUID, account_id: uuid.UUID | None
) -> Sequence[RowMapping]:
    """The rows of a shipment's document, one per parcel (none: no such shipment here);
    ``account_id`` None: any account's (staff, audited by the caller)."""
    if account_id is None:
        result = await session.execute(_DOCUMENT, {"shipment_id": shipment_id})
    else:
        result = await session.execute(
            DOCUMENT_OF_ACCOUNT, {"shipment_id": shipment_id, "account_id": account_id}
        )
    return result.mappings().all()


async def get_with_parcels(
    session: AsyncSession, shipment_id: uuid.UUID, account_id: uuid.UUID | None
) -> tuple[Shipment, list[Parcel]] | None:
    """A shipment and its parcels in one round trip (every shipment has at least one);
    ``account_id`` None: any account's (staff, audited by the caller)."""
    if account_id is None:
        result = await session.execute(_WITH_PARCELS, {"shipment_id": shipment_id})
    else:
        result = await session.execute(
            _WITH_PARCELS_OF_ACCOUNT, {"shipment_id": shipment_id, "account_id": account_id}
        )
    rows = result.all()
    if not rows:
        return None
    return rows[0][0], [parcel for _, parcel in rows]


async def get_many_for_account(
    session: AsyncSession, shipment_ids: Sequence[uuid.UUID], account_id: uuid.UUID
) -> list[Shipment]:
    rows = await session.scalars(
        select(Shipment).where(Shipment.id.in_(shipment_ids), Shipment.account_id == account_id)
    )
    return list(rows)


_BY_TRACKING_CODE = select(Shipment).where(Shipment.tracking_code == bindparam("code"))


async def get_by_tracking_code(session: AsyncSession, tracking_code: str) -> Shipment | None:
    return await session.scalar(_BY_TRACKING_CODE, {"code": tracking_code})


async def parcels_of(
    session: AsyncSession, shipment_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[Parcel]]:
    found: dict[uuid.UUID, list[Parcel]] = defaultdict(list)
    if not shipment_ids:
        return found
    rows = await session.scalars(
        select(Parcel)
        .where(Parcel.shipment_id.in_(shipment_ids))
        .order_by(Parcel.shipment_id, Parcel.sequence)
    )
    for parcel in rows:
        found[parcel.shipment_id].append(parcel)
    return found


async def events_of(session: AsyncSession, shipment_id: uuid.UUID) -> list[ShipmentEvent]:
    rows = await session.scalars(
        select(ShipmentEvent)
        .where(ShipmentEvent.shipment_id == shipment_id)
        .order_by(ShipmentEvent.occurred_at, ShipmentEvent.id)
    )
    return list(rows)


def list_statement(filters: ShipmentFilters) -> Select[Any]:
    statement = select(Shipment)
    if filters.account_id is not None:
        statement = statement.where(Shipment.account_id == filters.account_id)
    if filters.status is not None:
        statement = statement.where(Shipment.status == filters.status.value)
    if filters.carrier is not None:
        statement = statement.where(Shipment.carrier == filters.carrier.value)
    if filters.reference is not None:
        statement = statement.where(Shipment.reference == filters.reference)
    if filters.tracking_code is not None:
        statement = statement.where(Shipment.tracking_code == filters.tracking_code)
    if filters.created_from is not None:
        statement = statement.where(Shipment.created_at >= filters.created_from)
    if filters.created_to is not None:
        statement = statement.where(Shipment.created_at < filters.created_to)
    return statement


async def restricted_matches(
    session: AsyncSession,
    *,
    account_id: uuid.UUID,
    email_indexes: Sequence[str],
    phone_indexes: Sequence[str],
) -> tuple[bool, set[str], set[str]]:
    """Which of these recipients (or the account itself) restricted or objected."""
    conditions = [
        (SubjectRestriction.kind == "account") & (SubjectRestriction.value == str(account_id))
    ]
    if email_indexes:
        conditions.append(
            (SubjectRestriction.kind == "email")
            & SubjectRestriction.value.in_(sorted(set(email_indexes)))
        )
    if phone_indexes:
        conditions.append(
            (SubjectRestriction.kind == "phone")
            & SubjectRestriction.value.in_(sorted(set(phone_indexes)))
        )
    rows = (
        await session.execute(
            select(SubjectRestriction.kind, SubjectRestriction.value).where(or_(*conditions))
        )
    ).all()
    account = any(kind == "account" for kind, _ in rows)
    emails = {value for kind, value in rows if kind == "email"}
    phones = {value for kind, value in rows if kind == "phone"}
    return account, emails, phones


async def insert_shipments(
    session: AsyncSession,
    shipments: list[dict[str, Any]],
    parcels: list[dict[str, Any]],
    events: list[dict[str, Any]],
) -> None:
    """Set-based: three multi-row INSERTs whatever the number of shipments."""
    await session.execute(insert(Shipment), shipments)
    await session.execute(insert(Parcel), parcels)
    await session.execute(insert(ShipmentEvent), events)
