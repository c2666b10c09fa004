"""``/v1/privacy/incidents``: the breach register, for the privacy officer."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status

from libs.common.db import SessionDep
from libs.common.errors import problem_responses
from libs.common.idempotency import IdempotencyDep, StaffIdempotencyKeyHeader
from libs.common.openapi import operation_link
from libs.common.pagination import Page, PageParamsDep
from services.privacy_api.audit import service as audit
from services.privacy_api.context import CallerDep, CollaboratorsDep, OfficerDep
from services.privacy_api.idempotency import scope_of
from services.privacy_api.incidents import repository, service
from services.privacy_api.incidents.schemas import IncidentCreate, IncidentRead, IncidentUpdate

router = APIRouter(prefix="/v1/privacy/incidents", tags=["incidents"])

_ITEM = "/v1/privacy/incidents/{incident_id}"
_INCIDENT = {"incident_id": "$response.body#/id"}
CREATED_LINKS = {
    "GetIncident": operation_link("GET", _ITEM, _INCIDENT, "The breach just registered."),
    "UpdateIncident": operation_link(
        "PATCH", _ITEM, _INCIDENT, "Record the assessment, notifications and measures."
    ),
}


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=IncidentRead,
    summary="Register a personal data breach",
    responses={
        201: {"description": "The breach.", "links": CREATED_LINKS},
        **problem_responses(401, 403, 409, 422),
    },
)
async def create_incident(
    body: IncidentCreate,
    request: Request,
    officer: OfficerDep,
    session: SessionDep,
    app: CollaboratorsDep,
    caller: CallerDep,
    idempotency: IdempotencyDep,
    idempotency_key: StaffIdempotencyKeyHeader = None,
) -> Response:
    now = app.now()
    async with idempotency.guard(
        request, session, scope=scope_of(officer), key=idempotency_key, now=now
    ) as claim:
        if claim.replay is not None:
            return claim.replay
        incident = await service.create(session, officer, body, now=now, caller=caller)
        return await claim.complete(
            201,
            service.to_read(incident, now),
            resource_id=incident.id,
            location=f"{router.prefix}/{incident.id}",
        )


@router.get(
    "",
    response_model=Page[IncidentRead],
    summary="The breach register (newest first)",
    responses=problem_responses(401, 403, 422),
)
async def list_incidents(
    officer: OfficerDep,
    session: SessionDep,
    app: CollaboratorsDep,
    caller: CallerDep,
    params: PageParamsDep,
    overdue: Annotated[
        bool, Query(description="Only incidents past the 72-hour AP deadline.")
    ] = False,
) -> Page[IncidentRead]:
    now = app.now()
    rows, cursor = await repository.page(session, params, overdue_at=now if overdue else None)
    await audit.record(
        session,
        actor=officer,
        action="incident.listed",
        object_type="incident",
        object_id=None,
        at=now,
        details={"overdue": overdue},
        http_request_id=caller.request_id,
    )
    return Page(data=[service.to_read(row, now) for row in rows], next_cursor=cursor)


@router.get(
    "/{incident_id}",
    response_model=IncidentRead,
    summary="One breach",
    responses=problem_responses(401, 403, 404),
)
async def get_incident(
    incident_id: uuid.UUID,
    officer: OfficerDep,
    session: SessionDep,
    app: CollaboratorsDep,
    caller: CallerDep,
) -> IncidentRead:
    now = app.now()
    incident = await service.get(session, incident_id)
    await audit.record(
        session,
        actor=officer,
        action="incident.viewed",
        object_type="incident",
        object_id=incident.id,
        at=now,
        http_request_id=caller.request_id,
    )
    return service.to_read(incident, now)


@router.patch(
    "/{incident_id}",
    response_model=IncidentRead,
    summary="Record the assessment, notifications and measures, or close the breach",
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def update_incident(
    incident_id: uuid.UUID,
    body: IncidentUpdate,
    officer: OfficerDep,
    session: SessionDep,
    app: CollaboratorsDep,
    caller: CallerDep,
) -> IncidentRead:
    now = app.now()
    incident = await service.update(session, officer, incident_id, body, now=now, caller=caller)
    return service.to_read(incident, now)
