"""``/v1/shipments/{id}/notes``: support staff only; every read is audited."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from libs.common.auth import Principal, require_staff
from libs.common.clock import ClockDep
from libs.common.db import SessionDep
from libs.common.errors import problem_responses
from libs.common.idempotency import IdempotencyDep, StaffIdempotencyKeyHeader, staff_scope
from libs.common.openapi import operation_link
from libs.common.pagination import Page, PageParamsDep
from services.shipping_api.notes import service
from services.shipping_api.notes.schemas import NoteCreate, NoteRead
from services.shipping_api.shipments.access import (
    SUPPORT_ROLES,
    ShipmentReaderDep,
    record_staff_access,
)

router = APIRouter(prefix="/v1/shipments/{shipment_id}/notes", tags=["support notes"])

Support = Annotated[Principal, Depends(require_staff(*SUPPORT_ROLES))]

_ITEM = "/v1/shipments/{shipment_id}/notes/{note_id}"
CREATED_LINKS = {
    "GetSupportNote": operation_link(
        "GET",
        _ITEM,
        {"shipment_id": "$request.path.shipment_id", "note_id": "$response.body#/id"},
        "The note just recorded (needs `X-Access-Reason`).",
    )
}


@router.post(
    "",
    status_code=201,
    response_model=NoteRead,
    summary="Record a contact with support about this shipment",
    responses={
        201: {"description": "The note.", "links": CREATED_LINKS},
        **problem_responses(401, 403, 404, 409, 422),
    },
)
async def add_note(
    shipment_id: uuid.UUID,
    body: NoteCreate,
    request: Request,
    staff: Support,
    session: SessionDep,
    clock: ClockDep,
    idempotency: IdempotencyDep,
    idempotency_key: StaffIdempotencyKeyHeader = None,
) -> Response:
    assert staff.staff_id is not None  # noqa: S101 - require_staff guarantees it
    now = clock.now()
    async with idempotency.guard(
        request, session, scope=staff_scope(staff.staff_id), key=idempotency_key, now=now
    ) as claim:
        if claim.replay is not None:
            return claim.replay
        note = await service.add_note(session, shipment_id, body, staff_id=staff.staff_id, now=now)
        # Tied to the shipment, not the note: erasing the shipment (its recipient or its
        # account) erases its notes and, with them, this stored copy of one (decision 0202).
        return await claim.complete(
            201,
            NoteRead.model_validate(note),
            resource_id=shipment_id,
            location=f"/v1/shipments/{shipment_id}/notes/{note.id}",
        )


@router.get(
    "",
    response_model=Page[NoteRead],
    summary="The shipment's support notes, newest first (needs `X-Access-Reason`)",
    responses=problem_responses(401, 403, 404, 422),
)
async def list_notes(
    shipment_id: uuid.UUID,
    staff: Support,
    reader: ShipmentReaderDep,
    session: SessionDep,
    clock: ClockDep,
    page: PageParamsDep,
) -> Page[NoteRead]:
    shipment, notes, cursor = await service.list_notes(session, shipment_id, page)
    await record_staff_access(
        session,
        reader,
        action="read_notes",
        now=clock.now(),
        account_id=shipment.account_id,
        shipment_id=shipment.id,
    )
    return Page[NoteRead](data=[NoteRead.model_validate(n) for n in notes], next_cursor=cursor)


@router.get(
    "/{note_id}",
    response_model=NoteRead,
    summary="One support note of the shipment (needs `X-Access-Reason`)",
    responses=problem_responses(401, 403, 404, 422),
)
async def get_note(
    shipment_id: uuid.UUID,
    note_id: uuid.UUID,
    staff: Support,
    reader: ShipmentReaderDep,
    session: SessionDep,
    clock: ClockDep,
) -> NoteRead:
    shipment, note = await service.get_note(session, shipment_id, note_id)
    await record_staff_access(
        session,
        reader,
        action="read_note",
        now=clock.now(),
        account_id=shipment.account_id,
        shipment_id=shipment.id,
    )
    return NoteRead.model_validate(note)
