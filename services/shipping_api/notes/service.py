"""Support notes on a shipment: the contact history the privacy statement mentions
("bij bellen maken we aantekeningen die we bewaren")."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.db import uuid7
from libs.common.pagination import PageParams, paginate_by_id
from services.shipping_api.errors import ShipmentNotFound, SupportNoteNotFound
from services.shipping_api.models import Shipment, SupportNote
from services.shipping_api.notes.schemas import NoteCreate


async def _shipment(session: AsyncSession, shipment_id: uuid.UUID) -> Shipment:
    shipment = await session.get(Shipment, shipment_id)
    if shipment is None:
        raise ShipmentNotFound()
    return shipment


async def add_note(
    session: AsyncSession,
    shipment_id: uuid.UUID,
    body: NoteCreate,
    *,
    staff_id: uuid.UUID,
    now: datetime,
) -> SupportNote:
    shipment = await _shipment(session, shipment_id)
    note = SupportNote(
        id=uuid7(),
        shipment_id=shipment.id,
        account_id=shipment.account_id,
        author_staff_id=staff_id,
        channel=body.channel.value,
        body=body.body,
        created_at=now,
    )
    session.add(note)
    await session.flush()
    return note


async def get_note(
    session: AsyncSession, shipment_id: uuid.UUID, note_id: uuid.UUID
) -> tuple[Shipment, SupportNote]:
    shipment = await _shipment(session, shipment_id)
    note = await session.get(SupportNote, note_id)
    if note is None or note.shipment_id != shipment.id:
        raise SupportNoteNotFound()
    return shipment, note


async def list_notes(
    session: AsyncSession, shipment_id: uuid.UUID, params: PageParams
) -> tuple[Shipment, list[SupportNote], str | None]:
    shipment = await _shipment(session, shipment_id)
    rows, cursor = await paginate_by_id(
        session,
        select(SupportNote).where(SupportNote.shipment_id == shipment_id),
        SupportNote.id,
        params,
    )
    return shipment, [row for row in rows if isinstance(row, SupportNote)], cursor
