"""``GET /v1/privacy/audit-log``: what staff did in this service (read-only)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from libs.common.db import SessionDep
from libs.common.errors import problem_responses
from libs.common.pagination import Page, PageParamsDep
from services.privacy_api.audit import repository
from services.privacy_api.audit.schemas import AuditEntryRead
from services.privacy_api.context import OfficerDep

router = APIRouter(prefix="/v1/privacy/audit-log", tags=["audit log"])


@router.get(
    "",
    response_model=Page[AuditEntryRead],
    summary="Staff actions in the privacy registers (newest first)",
    responses=problem_responses(401, 403, 422),
)
async def list_audit_log(
    _: OfficerDep,
    session: SessionDep,
    params: PageParamsDep,
    object_type: Annotated[str | None, Query(max_length=32)] = None,
    object_id: Annotated[str | None, Query(max_length=64)] = None,
) -> Page[AuditEntryRead]:
    rows, cursor = await repository.page(
        session, params, object_type=object_type, object_id=object_id
    )
    return Page(
        data=[AuditEntryRead.model_validate(row, from_attributes=True) for row in rows],
        next_cursor=cursor,
    )
