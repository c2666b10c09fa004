"""``/v1/auth/token``, ``/logout``, ``/verify-email`` and ``/password-reset``."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated
from urllib.parse import unquote

from fastapi import APIRouter, Cookie, Depends, Form, Request, Response, status

from libs.common.auth import Principal, require_user
from libs.common.db import SessionDep
from libs.common.errors import (
    PROBLEM_BASE,
    problem_body,
    problem_response,
    problem_responses,
)
from services.identity_api.auth import service
from services.identity_api.auth.errors import (
    InvalidClient,
    InvalidRequest,
    OAuthError,
    UnsupportedGrantType,
)
from services.identity_api.auth.schemas import (
    Accepted,
    EmailVerification,
    GrantType,
    LogoutRequest,
    PasswordReset,
    PasswordResetRequest,
    TokenResponse,
)
from services.identity_api.dependencies import ContextDep

router = APIRouter(prefix="/v1/auth", tags=["auth"])

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def _basic_credentials(request: Request) -> tuple[str, str] | None:
    """RFC 6749 2.3.1: client credentials may come as HTTP Basic."""
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise InvalidClient("malformed Basic credentials") from exc
    client_id, _, secret = decoded.partition(":")
    return unquote(client_id), unquote(secret)


@router.post(
    "/token",
    response_model=TokenResponse,
    summary="Get tokens (OAuth2)",
    description=(
        "An OAuth2 token endpoint (form-encoded).\n\n"
        "* `grant_type=password` with `username` (e-mail) and `password`: an account holder "
        "or, with `scope=staff` or when no account has the address, a staff member.\n"
        "* `grant_type=refresh_token` with `refresh_token`: new tokens; the refresh token "
        "rotates, and a used one presented again signs the whole login out.\n"
        "* `grant_type=client_credentials` with `client_id`/`client_secret` (form or Basic): "
        "Parcel Pro services.\n\n"
        "Failed logins are throttled per account and per IP address (`429` + `Retry-After`). "
        "A password login sets the `parcelpro_device` cookie: a browser that sends it back is "
        "throttled on its own failures only, so someone guessing the password elsewhere "
        "cannot lock its owner out."
    ),
    responses=problem_responses(400, 401, 422, 429),
)
async def token(
    request: Request,
    session: SessionDep,
    ctx: ContextDep,
    response: Response,
    grant_type: Annotated[
        str, Form(description="`password`, `refresh_token` or `client_credentials`.")
    ],
    username: Annotated[str | None, Form(max_length=254, description="E-mail address.")] = None,
    password: Annotated[str | None, Form(max_length=1024)] = None,
    refresh_token: Annotated[str | None, Form(max_length=200)] = None,
    scope: Annotated[str, Form(max_length=500, description="Space-separated scopes.")] = "",
    client_id: Annotated[str | None, Form(max_length=100)] = None,
    client_secret: Annotated[str | None, Form(max_length=500)] = None,
    device: Annotated[
        str | None,
        Cookie(
            alias=service.DEVICE_COOKIE,
            max_length=512,
            description="Set by a password login (`HttpOnly`, `Secure`, `SameSite=Strict`, "
            "this path only): the browser logged in with that e-mail address before, so "
            "failed logins elsewhere do not throttle it. An invalid one is ignored.",
        ),
    ] = None,
) -> TokenResponse:
    response.headers.update(NO_STORE)
    try:
        grant = GrantType(grant_type)
    except ValueError as exc:
        raise UnsupportedGrantType(f"grant_type {grant_type!r} is not supported") from exc
    if grant is GrantType.PASSWORD:
        if not username or not password:
            raise InvalidRequest("the password grant needs username and password")
        issued = await service.password_grant(
            session, ctx, username=username, password=password, scope=scope, device_cookie=device
        )
    elif grant is GrantType.REFRESH_TOKEN:
        if not refresh_token:
            raise InvalidRequest("the refresh_token grant needs refresh_token")
        issued = await service.refresh_grant(session, ctx, refresh_token=refresh_token)
    else:
        basic = _basic_credentials(request)
        if basic is not None:
            client_id, client_secret = basic
        if not client_id or not client_secret:
            raise InvalidClient("client_id and client_secret are required")
        issued = await service.client_credentials_grant(
            session, ctx, client_id=client_id, client_secret=client_secret, scope=scope
        )
    if issued.device_cookie is not None:
        response.set_cookie(
            service.DEVICE_COOKIE,
            issued.device_cookie,
            max_age=ctx.runtime.settings.device_cookie_days * 86_400,
            path=f"{router.prefix}/token",
            secure=True,
            httponly=True,
            samesite="strict",
        )
    return TokenResponse(
        access_token=issued.access_token,
        expires_in=issued.expires_in,
        refresh_token=issued.refresh_token,
        scope=issued.scope,
    )


@router.post(
    "/logout",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Log out",
    description="Revokes the login the refresh token belongs to (every refresh token of it). "
    "Access tokens already issued expire on their own within 15 minutes.",
    responses=problem_responses(422),
)
async def logout(body: LogoutRequest, session: SessionDep, ctx: ContextDep) -> None:
    await service.logout(session, ctx, refresh_token=body.refresh_token)


@router.post(
    "/verify-email",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Confirm an e-mail address",
    responses=problem_responses(422),
)
async def verify_email(body: EmailVerification, session: SessionDep, ctx: ContextDep) -> None:
    await service.verify_email(session, ctx, token=body.token)


@router.post(
    "/verify-email/resend",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=Accepted,
    summary="Mail a new confirmation link",
    responses=problem_responses(401, 403, 429),
)
async def resend_verification(
    session: SessionDep,
    ctx: ContextDep,
    principal: Annotated[Principal, Depends(require_user())],
) -> Accepted:
    assert principal.account_id is not None  # noqa: S101
    await service.resend_verification(session, ctx, principal.account_id)
    return Accepted(detail="If the address is not confirmed yet, a new link is on its way.")


@router.post(
    "/password-reset",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=Accepted,
    summary="Mail a password-reset link",
    description="The answer is the same whether or not the address has an account. Only an "
    "account's confirmed address gets a link; a link stops working when the account's address "
    "changes.",
    responses=problem_responses(422, 429),
)
async def request_password_reset(
    body: PasswordResetRequest, session: SessionDep, ctx: ContextDep
) -> Accepted:
    await service.request_password_reset(session, ctx, email=body.email)
    return Accepted(detail="If the address has an account, a link is on its way.")


@router.post(
    "/password-reset/confirm",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Choose a new password with a reset link",
    description="Every login of the account is signed out.",
    responses=problem_responses(422),
)
async def reset_password(body: PasswordReset, session: SessionDep, ctx: ContextDep) -> None:
    await service.reset_password(session, ctx, token=body.token, new_password=body.new_password)


async def handle_oauth_error(request: Request, exc: Exception) -> Response:
    """Problem details plus RFC 6749's ``error`` and ``error_description`` members."""
    assert isinstance(exc, OAuthError)  # noqa: S101 - registered for OAuthError only
    body = problem_body(
        status=exc.status,
        title=exc.title,
        detail=exc.detail,
        type_=PROBLEM_BASE + exc.slug,
        instance=request.url.path,
        request_id=(request.scope.get("state") or {}).get("request_id"),
    )
    body["error"] = exc.error
    body["error_description"] = exc.detail
    return problem_response(exc.status, body, {**exc.headers, **NO_STORE})
