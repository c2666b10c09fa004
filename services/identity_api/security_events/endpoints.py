"""``GET /v1/accounts/me/security-events``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from libs.common.auth import Principal, require_user
from libs.common.db import SessionDep
from libs.common.errors import problem_responses
from libs.common.pagination import Page, PageParamsDep
from services.identity_api.security_events import service
from services.identity_api.security_events.schemas import SecurityEventRead

router = APIRouter(prefix="/v1/accounts/me/security-events", tags=["accounts"])


@router.get(
    "",
    response_model=Page[SecurityEventRead],
    summary="Your account's security events",
    description="Logins (also failed ones), password changes, API keys created and revoked, "
    "refresh-token reuse. Newest first.",
    responses=problem_responses(401, 403, 422),
)
async def list_security_events(
    session: SessionDep,
    params: PageParamsDep,
    principal: Annotated[Principal, Depends(require_user())],
) -> Page[SecurityEventRead]:
    assert principal.account_id is not None  # noqa: S101 - require_user guarantees it
    rows, cursor = await service.list_for_account(session, principal.account_id, params)
    return Page[SecurityEventRead](
        data=[SecurityEventRead.model_validate(row) for row in rows], next_cursor=cursor
    )
