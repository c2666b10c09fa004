"""``/v1/auth/register``, ``/v1/accounts/me``, and the internal sender-details and notice routes."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Response, status

from libs.common.auth import Principal, ServiceScope, require_service, require_user
from libs.common.clock import ClockDep
from libs.common.db import SessionDep
from libs.common.errors import problem_responses
from services.identity_api.accounts import service
from services.identity_api.accounts.schemas import (
    AccountCreate,
    AccountRead,
    OwnAccountUpdate,
    PasswordChange,
    SenderDetails,
)
from services.identity_api.dependencies import ContextDep
from services.identity_api.notices import service as notices
from services.identity_api.notices.schemas import AccountNotice, AccountNoticeAccepted

router = APIRouter(tags=["accounts"])
internal_router = APIRouter(prefix="/internal/v1/accounts", tags=["internal"])

UserDep = Annotated[Principal, Depends(require_user())]
# Personal data (the IBAN in full): never kept by browsers' or proxies' caches.
PRIVATE = {"Cache-Control": "no-store"}


def _account_id(principal: Principal) -> uuid.UUID:
    assert principal.account_id is not None  # noqa: S101 - require_user guarantees it
    return principal.account_id


@router.post(
    "/v1/auth/register",
    status_code=status.HTTP_201_CREATED,
    response_model=AccountRead,
    summary="Register an account",
    description="Creates an account holder's account and mails a link to confirm the e-mail "
    "address. The debtor number is assigned by Parcel Pro.",
    responses=problem_responses(409, 422, 429),
)
async def register(
    body: AccountCreate, session: SessionDep, ctx: ContextDep, response: Response
) -> AccountRead:
    account = await service.register(session, ctx, body)
    response.headers["Location"] = "/v1/accounts/me"
    response.headers.update(PRIVATE)
    return service.owner_view(ctx.runtime.cipher, account)


@router.get(
    "/v1/accounts/me",
    response_model=AccountRead,
    summary="Your account",
    responses=problem_responses(401, 403, 404),
)
async def read_me(
    session: SessionDep, ctx: ContextDep, principal: UserDep, response: Response
) -> AccountRead:
    response.headers.update(PRIVATE)
    account = await service.get_own(session, _account_id(principal))
    return service.owner_view(ctx.runtime.cipher, account)


@router.patch(
    "/v1/accounts/me",
    response_model=AccountRead,
    summary="Change your account's details",
    description="Send only the fields to change. A new e-mail address must be confirmed again. "
    "Changing `email` or `iban` needs `current_password` in the same body (422 naming it when "
    "missing or wrong; wrong guesses are throttled like failed logins).",
    responses=problem_responses(401, 403, 404, 409, 422, 429),
)
async def update_me(
    body: OwnAccountUpdate,
    session: SessionDep,
    ctx: ContextDep,
    principal: UserDep,
    response: Response,
) -> AccountRead:
    response.headers.update(PRIVATE)
    account = await service.update_own(session, ctx, _account_id(principal), body)
    return service.owner_view(ctx.runtime.cipher, account)


@router.post(
    "/v1/accounts/me/password",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Change your password",
    description="Needs the current password. Every login is signed out afterwards.",
    responses=problem_responses(401, 403, 404, 422, 429),
)
async def change_password(
    body: PasswordChange, session: SessionDep, ctx: ContextDep, principal: UserDep
) -> None:
    await service.change_password(
        session,
        ctx,
        _account_id(principal),
        current_password=body.current_password,
        new_password=body.new_password,
    )


@internal_router.get(
    "/{account_id}",
    response_model=SenderDetails,
    summary="An account's sender details (services only)",
    responses=problem_responses(401, 403, 404),
)
async def sender_details(
    account_id: uuid.UUID,
    session: SessionDep,
    _service: Annotated[Principal, Depends(require_service(ServiceScope.ACCOUNTS_READ))],
) -> SenderDetails:
    return await service.sender_details(session, account_id)


@internal_router.post(
    "/{account_id}/notices",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=AccountNoticeAccepted,
    summary="Mail an account holder a notice (services only)",
    description="Records the notice and queues a mail to the account's current e-mail address, "
    "in one transaction. The same notice `id` again (a retry) answers as the first time and "
    "mails nothing more; with another account it is 409. Notices are kept 30 days.",
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def accept_notice(
    account_id: uuid.UUID,
    body: AccountNotice,
    session: SessionDep,
    clock: ClockDep,
    _service: Annotated[Principal, Depends(require_service(ServiceScope.ACCOUNTS_NOTIFY))],
) -> AccountNoticeAccepted:
    return await notices.accept(session, account_id, body, now=clock.now())
