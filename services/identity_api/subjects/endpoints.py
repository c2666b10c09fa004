"""``/internal/v1/subjects/...``: called by privacy_api with a service token."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import StreamingResponse

from libs.common.auth import Principal, ServiceScope, require_service
from libs.common.db import SessionDep
from libs.common.errors import problem_responses
from libs.common.subjects import ndjson_response
from services.identity_api.dependencies import ContextDep, RuntimeDep
from services.identity_api.subjects import service
from services.identity_api.subjects.schemas import (
    EraseResult,
    ExportCall,
    RectifyCall,
    RectifyResult,
    RestrictCall,
    RestrictResult,
    SubjectCall,
)

router = APIRouter(prefix="/internal/v1/subjects", tags=["internal"])

ServiceDep = Annotated[Principal, Depends(require_service(ServiceScope.SUBJECTS))]


@router.post(
    "/export",
    response_class=StreamingResponse,
    summary="Export a subject's data (NDJSON)",
    description='One line per record: `{"category", "table", "record"}`; secrets are '
    '`"[stored, not disclosed]"`. Empty when nothing is held.',
    responses={
        200: {"content": {"application/x-ndjson": {}}, "description": "The records."},
        **problem_responses(401, 403, 422),
    },
)
async def export_subject(
    body: ExportCall, request: Request, runtime: RuntimeDep, _service: ServiceDep
) -> StreamingResponse:
    sessionmaker = request.app.state.database.sessionmaker
    return ndjson_response(
        service.export(
            sessionmaker,
            runtime.cipher,
            body.subject,
            hash_key=runtime.hash_key,
            categories=body.scope,
        )
    )


@router.post(
    "/erase",
    response_model=EraseResult,
    summary="Erase a subject's data",
    description="Anonymises the account (keeping what the fiscal obligation keeps, listed in "
    "`kept`), revokes API keys and logins, deletes the request log and security events.",
    responses=problem_responses(401, 403, 422),
)
async def erase_subject(
    body: SubjectCall, session: SessionDep, ctx: ContextDep, _service: ServiceDep
) -> EraseResult:
    return await service.erase(session, ctx, body.subject, body.request_id)


@router.post(
    "/restrict",
    response_model=RestrictResult,
    summary="Restrict (or lift the restriction of) processing",
    responses=problem_responses(401, 403, 422),
)
async def restrict_subject(
    body: RestrictCall, session: SessionDep, _service: ServiceDep
) -> RestrictResult:
    return await service.restrict(
        session, body.subject, body.request_id, restricted=body.restricted, basis=body.basis
    )


@router.post(
    "/rectify",
    response_model=RectifyResult,
    summary="Rectify a subject's account data",
    responses=problem_responses(401, 403, 409, 422),
)
async def rectify_subject(
    body: RectifyCall, session: SessionDep, ctx: ContextDep, _service: ServiceDep
) -> RectifyResult:
    return await service.rectify(session, ctx, body.subject, body.request_id, body.changes)
