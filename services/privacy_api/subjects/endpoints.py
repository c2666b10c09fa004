"""``/internal/v1/subjects/...`` for privacy's own data (decision 0004), and the consent look-up
other services make before profiling or personalising."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response
from fastapi.responses import StreamingResponse

from libs.common.auth import Principal, ServiceScope, require_service
from libs.common.db import SessionDep
from libs.common.errors import ValidationFailed, problem_responses
from libs.common.subjects import ndjson_response
from libs.common.validation import Email
from services.privacy_api.consents import service as consents
from services.privacy_api.consents.schemas import EffectiveConsents
from services.privacy_api.context import CollaboratorsDep
from services.privacy_api.subjects import service
from services.privacy_api.subjects.blind_index import email_index
from services.privacy_api.subjects.repository import SubjectKeys
from services.privacy_api.subjects.schemas import (
    EraseResult,
    RectifyCall,
    RectifyResult,
    RestrictCall,
    RestrictResult,
    SubjectCall,
)

router = APIRouter(prefix="/internal/v1", tags=["internal"])

SubjectsService = Annotated[Principal, Depends(require_service(ServiceScope.SUBJECTS))]
ConsentsService = Annotated[Principal, Depends(require_service(ServiceScope.CONSENTS_READ))]
ERRORS = problem_responses(401, 403, 422)


@router.post(
    "/subjects/export",
    summary="Everything privacy holds about a subject, as NDJSON",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/x-ndjson": {}}}, **ERRORS},
)
async def export_subject(
    body: SubjectCall, _: SubjectsService, app: CollaboratorsDep
) -> StreamingResponse:
    keys = service.keys_for(body.subject, app.settings.blind_index_key)

    async def lines() -> AsyncIterator[bytes]:
        # Own session: the response streams after the endpoint has returned.
        async with app.database.sessionmaker() as session:
            async for line in service.export_lines(session, keys):
                yield line

    return ndjson_response(lines())


@router.post(
    "/subjects/erase",
    response_model=EraseResult,
    summary="Erase a subject's data held by privacy",
    responses=ERRORS,
)
async def erase_subject(
    body: SubjectCall, _: SubjectsService, session: SessionDep, app: CollaboratorsDep
) -> EraseResult:
    keys = service.keys_for(body.subject, app.settings.blind_index_key)
    answer = await service.erase(session, keys, request_id=body.request_id, now=app.now())
    return EraseResult.model_validate(answer)


@router.post(
    "/subjects/restrict",
    response_model=RestrictResult,
    summary="Flag (or unflag) a subject's data held by privacy",
    responses=ERRORS,
)
async def restrict_subject(
    body: RestrictCall, _: SubjectsService, session: SessionDep, app: CollaboratorsDep
) -> RestrictResult:
    keys = service.keys_for(body.subject, app.settings.blind_index_key)
    answer = await service.restrict(
        session,
        keys,
        request_id=body.request_id,
        restricted=body.restricted,
        basis=body.basis,
        now=app.now(),
    )
    return RestrictResult.model_validate(answer)


@router.post(
    "/subjects/rectify",
    response_model=RectifyResult,
    summary="Correct a subject's data held by privacy (there is none to correct)",
    responses=ERRORS,
)
async def rectify_subject(body: RectifyCall, _: SubjectsService) -> RectifyResult:
    return RectifyResult.model_validate(await service.rectify(body.changes))


@router.get(
    "/consents",
    response_model=EffectiveConsents,
    summary="What another service may do for a subject now",
    description="Consents with a restriction or objection applied. Cache for at most a "
    "minute; give exactly one of `account_id` or `email`.",
    responses=ERRORS,
)
async def effective_consents(
    _: ConsentsService,
    session: SessionDep,
    app: CollaboratorsDep,
    response: Response,
    account_id: Annotated[uuid.UUID | None, Query()] = None,
    email: Annotated[Email | None, Query()] = None,
) -> EffectiveConsents:
    if (account_id is None) == (email is None):
        raise ValidationFailed.for_field(
            "account_id", "give exactly one of account_id or email", location="query"
        )
    keys = SubjectKeys(
        account_id=account_id, email_index=email_index(app.settings.blind_index_key, email)
    )
    response.headers["Cache-Control"] = "private, max-age=30"
    return await consents.effective(session, keys)
