"""``/v1/privacy/consents``: an account holder's consents, given and withdrawn the same way."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from libs.common.auth import Principal, require_user
from libs.common.db import SessionDep
from libs.common.errors import problem_responses
from libs.common.pagination import Page, PageParamsDep
from services.privacy_api.consents import service
from services.privacy_api.consents.schemas import ConsentEventRead, ConsentsRead, ConsentUpdate
from services.privacy_api.context import CollaboratorsDep
from services.privacy_api.models import ConsentPurpose, ConsentSource
from services.privacy_api.subjects.repository import SubjectKeys

router = APIRouter(prefix="/v1/privacy/consents", tags=["consents"])

AccountHolder = Annotated[Principal, Depends(require_user())]


def _keys(principal: Principal) -> SubjectKeys:
    return SubjectKeys(account_id=principal.account_id, email_index=None)


@router.get(
    "",
    response_model=ConsentsRead,
    summary="Your consents, with the text to show when asking",
    responses=problem_responses(401, 403),
)
async def get_consents(principal: AccountHolder, session: SessionDep) -> ConsentsRead:
    return await service.read(session, _keys(principal))


@router.put(
    "",
    response_model=ConsentsRead,
    summary="Give or withdraw consent per purpose",
    description="Giving consent names the `text_version` shown; withdrawing needs only "
    "`granted: false`. Every change is kept with its time, source and text version.",
    responses=problem_responses(401, 403, 422),
)
async def put_consents(
    body: ConsentUpdate, principal: AccountHolder, session: SessionDep, app: CollaboratorsDep
) -> ConsentsRead:
    await service.update(
        session, _keys(principal), body.decisions(), source=body.source, now=app.now()
    )
    return await service.read(session, _keys(principal))


@router.get(
    "/history",
    response_model=Page[ConsentEventRead],
    summary="Every consent you gave or withdrew (newest first)",
    responses=problem_responses(401, 403, 422),
)
async def consent_history(
    principal: AccountHolder, session: SessionDep, params: PageParamsDep
) -> Page[ConsentEventRead]:
    assert principal.account_id is not None  # noqa: S101 - a user principal has an account
    rows, cursor = await service.history(session, principal.account_id, params)
    return Page(
        data=[
            ConsentEventRead(
                id=row.id,
                purpose=ConsentPurpose(row.purpose),
                granted=row.granted,
                text_version=row.text_version,
                source=ConsentSource(row.source),
                recorded_at=row.recorded_at,
                privacy_request_id=row.privacy_request_id,
            )
            for row in rows
        ],
        next_cursor=cursor,
    )
