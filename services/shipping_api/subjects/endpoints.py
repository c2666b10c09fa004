"""``/internal/v1/subjects/*``: privacy_api's calls for data-subject requests (decision 0004).
Service tokens with ``internal:subjects`` only; never routed by the gateway."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from starlette.responses import StreamingResponse

from libs.common.auth import Principal, ServiceScope, require_service
from libs.common.clock import ClockDep
from libs.common.db import Database, SessionDep
from libs.common.errors import problem_responses
from libs.common.subjects import ndjson_response
from services.shipping_api.dependencies import BlindIndexDep
from services.shipping_api.subjects import service
from services.shipping_api.subjects.schemas import (
    EraseAnswer,
    ExportCall,
    RectifyAnswer,
    RectifyCall,
    RestrictAnswer,
    RestrictCall,
    SubjectCall,
)

router = APIRouter(prefix="/internal/v1/subjects", tags=["internal"])

PrivacyService = Annotated[Principal, Depends(require_service(ServiceScope.SUBJECTS))]
ERRORS = problem_responses(401, 403, 422)


@router.post(
    "/export",
    response_class=StreamingResponse,
    summary="Everything held about a subject, as NDJSON",
    responses={
        200: {
            "description": "One JSON object per line: `{category, table, record}`.",
            "content": {"application/x-ndjson": {"schema": {"type": "string"}}},
        },
        **ERRORS,
    },
)
async def export(
    body: ExportCall, request: Request, _: PrivacyService, blind_index: BlindIndexDep
) -> StreamingResponse:
    keys = service.SubjectKeys(body.subject, blind_index)
    database: Database = request.app.state.database

    async def lines() -> AsyncIterator[bytes]:
        async for line in service.export_subject(
            database.sessionmaker, keys, categories=body.scope
        ):
            yield line

    return ndjson_response(lines())


@router.post(
    "/erase",
    response_model=EraseAnswer,
    summary="Erase a subject's personal data (keeping what the law keeps)",
    responses=ERRORS,
)
async def erase(
    body: SubjectCall,
    _: PrivacyService,
    session: SessionDep,
    clock: ClockDep,
    blind_index: BlindIndexDep,
) -> Any:
    earlier = await service.stored_answer(session, body.request_id, "erase")
    if earlier is not None:
        return earlier
    keys = service.SubjectKeys(body.subject, blind_index)
    answer = await service.erase_subject(session, keys, now=clock.now())
    return await service.store_answer(session, body.request_id, "erase", answer, clock.now())


@router.post(
    "/restrict",
    response_model=RestrictAnswer,
    summary="Restrict (art. 18) or object (art. 21), or lift it for the same basis",
    responses=ERRORS,
)
async def restrict(
    body: RestrictCall,
    _: PrivacyService,
    session: SessionDep,
    clock: ClockDep,
    blind_index: BlindIndexDep,
) -> Any:
    earlier = await service.stored_answer(session, body.request_id, "restrict")
    if earlier is not None:
        return earlier
    keys = service.SubjectKeys(body.subject, blind_index)
    answer = await service.restrict_subject(
        session,
        keys,
        restricted=body.restricted,
        basis=body.basis,
        request_id=body.request_id,
        now=clock.now(),
    )
    return await service.store_answer(session, body.request_id, "restrict", answer, clock.now())


@router.post(
    "/rectify",
    response_model=RectifyAnswer,
    summary="Correct a recipient's data on their shipments",
    responses=ERRORS,
)
async def rectify(
    body: RectifyCall,
    _: PrivacyService,
    session: SessionDep,
    clock: ClockDep,
    blind_index: BlindIndexDep,
) -> Any:
    earlier = await service.stored_answer(session, body.request_id, "rectify")
    if earlier is not None:
        return earlier
    keys = service.SubjectKeys(body.subject, blind_index)
    answer = await service.rectify_subject(
        session, keys, body.changes, blind_index=blind_index, now=clock.now()
    )
    return await service.store_answer(session, body.request_id, "rectify", answer, clock.now())
