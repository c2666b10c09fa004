"""``/v1/privacy/requests``: data-subject requests for requesters and the privacy officer."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request, Response, status
from fastapi.responses import FileResponse

from libs.common.auth import Principal, PrincipalDep
from libs.common.db import SessionDep
from libs.common.errors import Unauthorized, ValidationFailed, problem_responses
from libs.common.idempotency import HEADER as IDEMPOTENCY_HEADER
from libs.common.idempotency import IdempotencyDep, IdempotencyKeyHeader
from libs.common.openapi import operation_link
from libs.common.pagination import Page, PageParamsDep
from services.privacy_api.audit import service as audit
from services.privacy_api.context import (
    CallerDep,
    CollaboratorsDep,
    OfficerDep,
    PublicPrincipalDep,
    WakeWorkerDep,
)
from services.privacy_api.idempotency import scope_of
from services.privacy_api.models import RequestStatus, RequestType
from services.privacy_api.requests import repository, service
from services.privacy_api.requests.schemas import (
    ExtendDeadline,
    PrivacyRequestCreate,
    PrivacyRequestCreated,
    PrivacyRequestRead,
    RejectRequest,
    VerifyCode,
)

router = APIRouter(prefix="/v1/privacy/requests", tags=["privacy requests"])

_ITEM = "/v1/privacy/requests/{request_id}"
# Without an account, the request's own token is the credential of every follow-up.
_REQUEST = {
    "request_id": "$response.body#/id",
    "header.X-Privacy-Request-Token": "$response.body#/access_token",
}
CREATED_LINKS = {
    "GetPrivacyRequest": operation_link("GET", _ITEM, _REQUEST, "Follow the request."),
    "VerifyPrivacyRequest": operation_link(
        "POST", f"{_ITEM}/verify", _REQUEST, "Without an account: confirm it with the code."
    ),
    "DownloadPrivacyExport": operation_link(
        "GET", f"{_ITEM}/export", _REQUEST, "Access and portability: download the export."
    ),
    "ExtendPrivacyRequest": operation_link(
        "POST", f"{_ITEM}/extend", {"request_id": "$response.body#/id"}, "Officer: extend it."
    ),
    "RejectPrivacyRequest": operation_link(
        "POST", f"{_ITEM}/reject", {"request_id": "$response.body#/id"}, "Officer: refuse it."
    ),
}

RequestToken = Annotated[
    str | None,
    Header(
        alias="X-Privacy-Request-Token",
        max_length=128,
        description="Requests without an account: the `access_token` returned at creation.",
    ),
]


async def requester(principal: PublicPrincipalDep) -> Principal | None:
    """Decided before the body is read: a caller who may not make requests learns nothing
    about what a valid one looks like."""
    service.check_requester(principal)
    return principal


async def request_token(token: RequestToken = None) -> str:
    """Requests without an account: their token is the credential (401 without it)."""
    if not token:
        raise Unauthorized("send the request's X-Privacy-Request-Token")
    return token


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=PrivacyRequestCreated,
    summary="Make a privacy request (view, correct, restrict, erase, object, take along)",
    description="Logged in: verified at once, your account is the subject. Without an account: "
    "a 6-digit code is mailed to `email` (valid 30 minutes, 5 tries); the answer is the same "
    "whether or not we hold data about that address. `Idempotency-Key` is honoured when logged "
    "in and refused (`422`) without an account, whose answer carries a one-time `access_token` "
    "that is never stored readable (decision 0303).",
    responses={
        201: {"description": "The request.", "links": CREATED_LINKS},
        **problem_responses(401, 403, 409, 422, 429, 502, 503, 504),
    },
)
async def create_request(
    body: PrivacyRequestCreate,
    request: Request,
    principal: Annotated[Principal | None, Depends(requester)],
    session: SessionDep,
    app: CollaboratorsDep,
    caller: CallerDep,
    idempotency: IdempotencyDep,
    _: WakeWorkerDep,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    if principal is None and idempotency_key is not None:
        # Decision 0303: a replay would hand the one-time access token to whoever repeats the
        # address and the key, and a key kept per address would tell who has a request.
        raise ValidationFailed.for_field(
            IDEMPOTENCY_HEADER,
            "not accepted without an account: send the request once, without this header",
            location="header",
        )
    # Without an account there is no key, so no scope either.
    scope = scope_of(principal) if principal is not None else ""
    async with idempotency.guard(
        request, session, scope=scope, key=idempotency_key, now=app.now()
    ) as claim:
        if claim.replay is not None:
            return claim.replay
        created = await service.create(session, app, principal, body, caller)
        read = service.to_read(created.request, created.tasks, app.now())
        return await claim.complete(
            201,
            PrivacyRequestCreated(**read.model_dump(), access_token=created.access_token),
            resource_id=created.request.id,
            location=f"/v1/privacy/requests/{created.request.id}",
        )


@router.post(
    "/{request_id}/verify",
    response_model=PrivacyRequestRead,
    summary="Confirm a request without an account with the mailed code",
    responses=problem_responses(401, 404, 409, 422, 429),
)
async def verify_request(
    request_id: uuid.UUID,
    token: Annotated[str, Depends(request_token)],
    body: VerifyCode,
    session: SessionDep,
    app: CollaboratorsDep,
    caller: CallerDep,
    _: WakeWorkerDep,
) -> PrivacyRequestRead:
    request = await service.verify(session, app, request_id, token, body.code, caller)
    tasks = await repository.tasks_of(session, [request.id])
    return service.to_read(request, tasks[request.id], app.now())


@router.get(
    "",
    response_model=Page[PrivacyRequestRead],
    summary="Your privacy requests; for the privacy officer, all (filter `overdue=true`)",
    responses=problem_responses(401, 403, 422),
)
async def list_requests(
    principal: PrincipalDep,
    session: SessionDep,
    app: CollaboratorsDep,
    caller: CallerDep,
    params: PageParamsDep,
    status_: Annotated[RequestStatus | None, Query(alias="status")] = None,
    type_: Annotated[RequestType | None, Query(alias="type")] = None,
    overdue: Annotated[
        bool, Query(description="Privacy officer: only requests past their deadline.")
    ] = False,
) -> Page[PrivacyRequestRead]:
    now = app.now()
    rows, cursor = await service.page_for(
        session, principal, params, status=status_, type_=type_, overdue=overdue, now=now
    )
    if service.is_officer(principal):
        await audit.record(
            session,
            actor=principal,
            action="privacy_request.listed",
            object_type="privacy_request",
            object_id=None,
            at=now,
            details={"overdue": overdue, "status": status_, "type": type_},
            http_request_id=caller.request_id,
        )
    tasks = await repository.tasks_of(session, [row.id for row in rows])
    return Page(data=[service.to_read(row, tasks[row.id], now) for row in rows], next_cursor=cursor)


@router.get(
    "/{request_id}",
    response_model=PrivacyRequestRead,
    summary="One privacy request, with each service's answer",
    responses=problem_responses(401, 403, 404),
)
async def get_request(
    request_id: uuid.UUID,
    principal: PublicPrincipalDep,
    session: SessionDep,
    app: CollaboratorsDep,
    caller: CallerDep,
    token: RequestToken = None,
) -> PrivacyRequestRead:
    request = await service.get_visible(session, app, principal, token, request_id)
    if service.is_officer(principal):
        assert principal is not None  # noqa: S101
        await audit.record(
            session,
            actor=principal,
            action="privacy_request.viewed",
            object_type="privacy_request",
            object_id=request.id,
            at=app.now(),
            http_request_id=caller.request_id,
        )
    tasks = await repository.tasks_of(session, [request.id])
    return service.to_read(request, tasks[request.id], app.now())


@router.get(
    "/{request_id}/export",
    response_class=FileResponse,
    summary="Download your data (ZIP of JSON and CSV per service and category, and a summary)",
    responses={
        200: {"content": {"application/zip": {}}},
        **problem_responses(401, 403, 404, 409, 410),
    },
)
async def download_export(
    request_id: uuid.UUID,
    principal: PublicPrincipalDep,
    session: SessionDep,
    app: CollaboratorsDep,
    caller: CallerDep,
    token: RequestToken = None,
) -> FileResponse:
    request, path = await service.export_path(session, app, principal, token, request_id, caller)
    return FileResponse(
        path,
        media_type="application/zip",
        filename=f"parcelpro-export-{request.id}.zip",
        headers={"Cache-Control": "no-store"},
    )


@router.post(
    "/{request_id}/extend",
    response_model=PrivacyRequestRead,
    summary="Privacy officer: extend the deadline once, by up to two months (art. 12(3))",
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def extend_request(
    request_id: uuid.UUID,
    body: ExtendDeadline,
    officer: OfficerDep,
    session: SessionDep,
    app: CollaboratorsDep,
    caller: CallerDep,
) -> PrivacyRequestRead:
    request = await service.extend(session, app, officer, request_id, body, caller)
    tasks = await repository.tasks_of(session, [request.id])
    return service.to_read(request, tasks[request.id], app.now())


@router.post(
    "/{request_id}/reject",
    response_model=PrivacyRequestRead,
    summary="Privacy officer: refuse to act on a request, with the reason (art. 12(4))",
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def reject_request(
    request_id: uuid.UUID,
    body: RejectRequest,
    officer: OfficerDep,
    session: SessionDep,
    app: CollaboratorsDep,
    caller: CallerDep,
) -> PrivacyRequestRead:
    request = await service.reject(session, app, officer, request_id, body, caller)
    tasks = await repository.tasks_of(session, [request.id])
    return service.to_read(request, tasks[request.id], app.now())
