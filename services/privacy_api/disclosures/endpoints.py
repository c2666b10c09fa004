"""``/v1/privacy/disclosures``: authority requests, for the privacy officer."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status
from fastapi.responses import FileResponse

from libs.common.db import SessionDep
from libs.common.errors import problem_responses
from libs.common.idempotency import IdempotencyDep, StaffIdempotencyKeyHeader
from libs.common.openapi import operation_link
from libs.common.pagination import Page, PageParamsDep
from services.privacy_api.audit import service as audit
from services.privacy_api.context import CallerDep, CollaboratorsDep, OfficerDep, WakeWorkerDep
from services.privacy_api.disclosures import repository, service
from services.privacy_api.disclosures.schemas import (
    DisclosureCreate,
    DisclosureDecide,
    DisclosureRead,
)
from services.privacy_api.idempotency import scope_of
from services.privacy_api.models import DisclosureDecision

router = APIRouter(prefix="/v1/privacy/disclosures", tags=["disclosures"])

_ITEM = "/v1/privacy/disclosures/{disclosure_id}"
_DISCLOSURE = {"disclosure_id": "$response.body#/id"}
CREATED_LINKS = {
    "GetDisclosure": operation_link("GET", _ITEM, _DISCLOSURE, "The disclosure just recorded."),
    "DecideDisclosure": operation_link(
        "POST", f"{_ITEM}/decision", _DISCLOSURE, "Approve or reject it."
    ),
    "DownloadDisclosureExport": operation_link(
        "GET", f"{_ITEM}/export", _DISCLOSURE, "Once approved: the scoped export."
    ),
}


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=DisclosureRead,
    summary="Register an authority's request for personal data",
    responses={
        201: {"description": "The disclosure.", "links": CREATED_LINKS},
        **problem_responses(401, 403, 409, 422),
    },
)
async def create_disclosure(
    body: DisclosureCreate,
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
        disclosure = await service.create(session, officer, body, now=now, caller=caller)
        return await claim.complete(
            201,
            service.to_read(disclosure, None),
            resource_id=disclosure.id,
            location=f"{router.prefix}/{disclosure.id}",
        )


@router.get(
    "",
    response_model=Page[DisclosureRead],
    summary="The disclosure register (newest first)",
    responses=problem_responses(401, 403, 422),
)
async def list_disclosures(
    officer: OfficerDep,
    session: SessionDep,
    app: CollaboratorsDep,
    caller: CallerDep,
    params: PageParamsDep,
    decision: Annotated[DisclosureDecision | None, Query()] = None,
) -> Page[DisclosureRead]:
    rows, cursor = await repository.page(
        session, params, decision=decision.value if decision else None
    )
    exports = await repository.export_requests(session, [row.id for row in rows])
    await audit.record(
        session,
        actor=officer,
        action="disclosure.listed",
        object_type="disclosure",
        object_id=None,
        at=app.now(),
        http_request_id=caller.request_id,
    )
    return Page(
        data=[service.to_read(row, exports.get(row.id)) for row in rows], next_cursor=cursor
    )


@router.get(
    "/{disclosure_id}",
    response_model=DisclosureRead,
    summary="One disclosure",
    responses=problem_responses(401, 403, 404),
)
async def get_disclosure(
    disclosure_id: uuid.UUID,
    officer: OfficerDep,
    session: SessionDep,
    app: CollaboratorsDep,
    caller: CallerDep,
) -> DisclosureRead:
    disclosure = await service.get(session, disclosure_id)
    exports = await repository.export_requests(session, [disclosure.id])
    await audit.record(
        session,
        actor=officer,
        action="disclosure.viewed",
        object_type="disclosure",
        object_id=disclosure.id,
        at=app.now(),
        http_request_id=caller.request_id,
    )
    return service.to_read(disclosure, exports.get(disclosure.id))


@router.post(
    "/{disclosure_id}/decision",
    response_model=DisclosureRead,
    summary="Approve (starts the scoped export) or reject",
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def decide_disclosure(
    disclosure_id: uuid.UUID,
    body: DisclosureDecide,
    officer: OfficerDep,
    session: SessionDep,
    app: CollaboratorsDep,
    caller: CallerDep,
    _: WakeWorkerDep,
) -> DisclosureRead:
    disclosure = await service.decide(session, app, officer, disclosure_id, body, caller)
    exports = await repository.export_requests(session, [disclosure.id])
    return service.to_read(disclosure, exports.get(disclosure.id))


@router.get(
    "/{disclosure_id}/export",
    response_class=FileResponse,
    summary="Download the scoped export of an approved disclosure",
    responses={
        200: {"content": {"application/zip": {}}},
        **problem_responses(401, 403, 404, 409, 410),
    },
)
async def download_disclosure_export(
    disclosure_id: uuid.UUID,
    officer: OfficerDep,
    session: SessionDep,
    app: CollaboratorsDep,
    caller: CallerDep,
) -> FileResponse:
    path = await service.export_path(session, app, officer, disclosure_id, caller)
    return FileResponse(
        path, media_type="application/zip", filename=f"parcelpro-disclosure-{disclosure_id}.zip"
    )
