"""Privacy-request rules: who may file what, verification, deadlines, the officer's actions.

The answer to a request without an account is the same whether or not we hold data about the
address (no existence oracle); each request becomes one task per service once verified.
"""

from __future__ import annotations

import calendar
import hashlib
import hmac
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.auth import Principal, PrincipalKind, Role
from libs.common.errors import (
    BadGateway,
    Conflict,
    DomainError,
    Forbidden,
    NotFound,
    ServiceUnavailable,
    Unauthorized,
    ValidationFailed,
)
from libs.common.pagination import PageParams
from services.privacy_api.audit import service as audit
from services.privacy_api.context import Caller, Collaborators
from services.privacy_api.models import (
    PrivacyRequest,
    PrivacyTask,
    RequestSource,
    RequestStatus,
    RequestType,
    ServiceName,
    TaskAction,
    TaskStatus,
    VerificationMethod,
)
from services.privacy_api.outbox import service as outbox
from services.privacy_api.requests import mails, repository
from services.privacy_api.requests.schemas import (
    ExportRead,
    ExtendDeadline,
    ExtensionRead,
    PrivacyRequestCreate,
    PrivacyRequestRead,
    RejectRequest,
    TaskRead,
)
from services.privacy_api.subjects.blind_index import email_index, phone_index

# The promise of the verification mail: 6 digits, 30 minutes, 5 tries.
CODE_TTL = timedelta(minutes=30)
MAX_CODE_ATTEMPTS = 5
OFFICER_ROLES = (Role.PRIVACY_OFFICER, Role.ADMIN)


class ExportGone(DomainError):
    status, slug, title = 410, "export-expired", "The export has expired"


def add_months(moment: datetime, months: int) -> datetime:
    """Calendar months; the 31st of January plus one month is the last day of February."""
    month_index = moment.month - 1 + months
    year = moment.year + month_index // 12
    month = month_index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def _hash_secret(key: str, value: str, *, context: str) -> str:
    return hmac.new(key.encode(), f"{context}:{value}".encode(), hashlib.sha256).hexdigest()


def is_officer(principal: Principal | None) -> bool:
    return principal is not None and principal.is_staff and principal.has_role(*OFFICER_ROLES)


# --------------------------------------------------------------------------------------------
# Tasks
# --------------------------------------------------------------------------------------------


def plan_tasks(request: PrivacyRequest, now: datetime) -> list[PrivacyTask]:
    """One task per service that holds a share of the request."""
    kind = RequestType(request.type)
    every = list(ServiceName)
    plan: list[tuple[ServiceName, TaskAction]]
    if kind in {RequestType.ACCESS, RequestType.PORTABILITY}:
        plan = [(service, TaskAction.EXPORT) for service in every]
    elif kind is RequestType.ERASURE:
        plan = [(service, TaskAction.ERASE) for service in every]
    elif kind is RequestType.RESTRICTION:
        plan = [(service, TaskAction.RESTRICT) for service in every]
    elif kind is RequestType.OBJECTION:
        plan = [
            (ServiceName.IDENTITY, TaskAction.RESTRICT),
            (ServiceName.SHIPPING, TaskAction.RESTRICT),
            (ServiceName.PRIVACY, TaskAction.OBJECT),
        ]
    else:
        plan = [(ServiceName(name), TaskAction.RECTIFY) for name in sorted(request.changes or {})]
    return [
        PrivacyTask(
            request_id=request.id,
            service=service.value,
            action=action.value,
            status=TaskStatus.PENDING.value,
            attempts=0,
            next_attempt_at=now,
            created_at=now,
        )
        for service, action in plan
    ]


async def _mark_verified(
    session: AsyncSession,
    request: PrivacyRequest,
    *,
    method: VerificationMethod,
    now: datetime,
) -> None:
    request.status = RequestStatus.VERIFIED.value
    request.verified_at = now
    request.verification_method = method.value
    request.code_hash = None
    request.code_expires_at = None
    await repository.add_tasks(session, plan_tasks(request, now))


# --------------------------------------------------------------------------------------------
# Receipt
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Created:
    request: PrivacyRequest
    tasks: list[PrivacyTask]
    access_token: str | None


def _refuse(field: str, who: str) -> ValidationFailed:
    return ValidationFailed.for_field(field, f"not accepted {who}")


def _check_type_fields(body: PrivacyRequestCreate) -> None:
    if body.type is RequestType.RECTIFICATION and body.changes is None:
        raise ValidationFailed.for_field("changes", "a rectification says what to correct")
    if body.type is not RequestType.RECTIFICATION and body.changes is not None:
        raise ValidationFailed.for_field("changes", "only a rectification carries changes")
    if body.type is not RequestType.OBJECTION and body.grounds is not None:
        raise ValidationFailed.for_field("grounds", "only an objection carries grounds")


def _new_request(
    body: PrivacyRequestCreate, *, source: RequestSource, received_at: datetime
) -> PrivacyRequest:
    return PrivacyRequest(
        type=body.type.value,
        source=source.value,
        status=RequestStatus.PENDING_VERIFICATION.value,
        message=body.message,
        grounds=body.grounds,
        changes=(
            {service.value: values for service, values in body.changes.per_service().items()}
            if body.changes is not None
            else None
        ),
        received_at=received_at,
        due_at=add_months(received_at, 1),  # AVG art. 12(3): one month after receipt
        code_attempts=0,
    )


async def create(
    session: AsyncSession,
    app: Collaborators,
    principal: Principal | None,
    body: PrivacyRequestCreate,
    caller: Caller,
) -> Created:
    check_requester(principal)
    _check_type_fields(body)
    now = app.now()
    if principal is None:
        return await _create_without_account(session, app, body, caller, now)
    if principal.kind is PrincipalKind.USER:
        return await _create_for_account(session, app, principal, body, now)
    return await _create_from_letter(session, app, principal, body, caller, now)


def check_requester(principal: Principal | None) -> None:
    """Who may make a privacy request: the person (logged in or not), or the privacy officer
    entering one received by letter."""
    if principal is None or principal.kind is PrincipalKind.USER or is_officer(principal):
        return
    if principal.kind is PrincipalKind.API_KEY:
        raise Forbidden("privacy requests are made by the person, logged in, not with an API key")
    raise Forbidden("only the privacy officer enters privacy requests for others")


async def _create_for_account(
    session: AsyncSession,
    app: Collaborators,
    principal: Principal,
    body: PrivacyRequestCreate,
    now: datetime,
) -> Created:
    for field in ("email", "phone", "account_id", "verification_note", "received_at"):
        if getattr(body, field) is not None:
            raise _refuse(field, "from an account holder: your account is the subject")
    assert principal.account_id is not None  # noqa: S101 - a user principal has an account
    await app.rate_limiter.enforce(
        app.settings.request_create_limit, "create", "account", str(principal.account_id)
    )
    email = await confirmed_account_email(app, principal.account_id)
    request = _new_request(body, source=RequestSource.ACCOUNT, received_at=now)
    request.account_id = principal.account_id
    request.email = email
    request.email_index = email_index(app.settings.blind_index_key, email)
    await repository.add(session, request)
    await _mark_verified(session, request, method=VerificationMethod.ACCOUNT_LOGIN, now=now)
    tasks = (await repository.tasks_of(session, [request.id]))[request.id]
    return Created(request, tasks, None)


async def confirmed_account_email(app: Collaborators, account_id: uuid.UUID) -> str | None:
    """The account holder's e-mail address, from identity (decision 0004), if they confirmed it.

    An address typed into the account but never confirmed may be someone else's: it must not
    find parcels addressed to that person, nor be mailed about the request (decision 0303)."""
    path = f"/internal/v1/accounts/{account_id}"
    response = await app.identity.request("GET", path, headers=await app.service_tokens.headers())
    if response.status_code == 401:
        app.service_tokens.invalidate()
        response = await app.identity.request(
            "GET", path, headers=await app.service_tokens.headers()
        )
    if response.status_code == 404:
        raise Unauthorized("this account no longer exists")
    if response.status_code != 200:
        raise BadGateway(f"identity answered {response.status_code}")
    try:
        account = response.json()
        email = account.get("email")
        is_confirmed = account.get("email_verified") is True
    except (ValueError, AttributeError) as exc:
        raise BadGateway("identity answered with an unusable account") from exc
    return str(email) if email and is_confirmed else None


async def _create_without_account(
    session: AsyncSession,
    app: Collaborators,
    body: PrivacyRequestCreate,
    caller: Caller,
    now: datetime,
) -> Created:
    for field in ("account_id", "verification_note", "received_at"):
        if getattr(body, field) is not None:
            raise _refuse(field, "without the privacy officer's login")
    if body.phone is not None:
        # AVG art. 12(6): data is released only through what the requester proved; the mailed
        # code proves the address, nothing proves a phone number (decision 0303).
        raise ValidationFailed.for_field(
            "phone",
            "not accepted without an account: only the e-mail address you confirm with the "
            "mailed code is used to find your data; for parcels we know only by your phone "
            "number, write to our privacy officer, who checks your identity first",
        )
    if body.email is None:
        raise ValidationFailed.for_field(
            "email", "without an account, give the e-mail address the request is about"
        )
    key = app.settings.blind_index_key
    index = email_index(key, body.email)
    assert index is not None  # noqa: S101 - email is set
    # Each request mails a code: limit per client and per address, so the endpoint cannot be
    # used to flood someone's mailbox.
    await app.rate_limiter.enforce(
        app.settings.request_create_limit, "create", "ip", caller.ip or "?"
    )
    await app.rate_limiter.enforce(
        app.settings.request_create_per_email_limit, "create", "email", index
    )
    request = _new_request(body, source=RequestSource.EMAIL, received_at=now)
    request.email = body.email
    request.email_index = index
    await repository.add(session, request)
    code = f"{secrets.randbelow(1_000_000):06d}"
    token = secrets.token_urlsafe(32)
    request.code_hash = _hash_secret(key, code, context=f"code:{request.id}")
    request.code_expires_at = now + CODE_TTL
    request.access_token_hash = _hash_secret(key, token, context=f"token:{request.id}")
    await session.flush()
    # Sent directly, not through the outbox: the code must never be stored in plain text.
    try:
        await app.mailer.send(
            mails.verification_code(body.email, code, request, int(CODE_TTL.total_seconds() // 60))
        )
    except Exception as exc:
        raise ServiceUnavailable("the verification e-mail could not be sent; try again") from exc
    return Created(request, [], token)


async def _create_from_letter(
    session: AsyncSession,
    app: Collaborators,
    officer: Principal,
    body: PrivacyRequestCreate,
    caller: Caller,
    now: datetime,
) -> Created:
    if body.verification_note is None:
        raise ValidationFailed.for_field(
            "verification_note", "say how the identity was checked (never attach the ID copy)"
        )
    if body.account_id is None and body.email is None:
        raise ValidationFailed.for_field("email", "give the account_id and/or e-mail address")
    received_at = body.received_at or now
    if received_at.tzinfo is None:
        raise ValidationFailed.for_field("received_at", "give a time zone (e.g. Z)")
    if received_at > now:
        raise ValidationFailed.for_field("received_at", "cannot be in the future")
    key = app.settings.blind_index_key
    request = _new_request(body, source=RequestSource.LETTER, received_at=received_at)
    request.account_id = body.account_id
    request.email = body.email
    request.email_index = email_index(key, body.email)
    request.phone = body.phone
    request.phone_index = phone_index(key, body.phone)
    request.verification_note = body.verification_note
    request.verified_by = officer.subject
    request.created_by = officer.subject
    await repository.add(session, request)
    await _mark_verified(session, request, method=VerificationMethod.ID_DOCUMENT, now=now)
    await audit.record(
        session,
        actor=officer,
        action="privacy_request.entered_from_letter",
        object_type="privacy_request",
        object_id=request.id,
        at=now,
        details={"type": request.type, "received_at": received_at.isoformat()},
        http_request_id=caller.request_id,
    )
    tasks = (await repository.tasks_of(session, [request.id]))[request.id]
    return Created(request, tasks, None)


# --------------------------------------------------------------------------------------------
# Verification and visibility
# --------------------------------------------------------------------------------------------


def _token_matches(app: Collaborators, request: PrivacyRequest, token: str | None) -> bool:
    if not token or request.access_token_hash is None:
        return False
    expected = _hash_secret(app.settings.blind_index_key, token, context=f"token:{request.id}")
    return hmac.compare_digest(expected, request.access_token_hash)


async def verify(
    session: AsyncSession,
    app: Collaborators,
    request_id: uuid.UUID,
    token: str | None,
    code: str,
    caller: Caller,
) -> PrivacyRequest:
    await app.rate_limiter.enforce(app.settings.verify_limit, "verify", "ip", caller.ip or "?")
    request = await repository.get_for_update(session, request_id)
    if request is None or not _token_matches(app, request, token):
        raise NotFound("no privacy request with this id and token")
    if request.status != RequestStatus.PENDING_VERIFICATION.value:
        raise Conflict(f"the request is {request.status}, not waiting for a code")
    now = app.now()
    if request.code_expires_at is None or request.code_expires_at < now:
        raise Conflict("the code has expired; make a new request")
    if request.code_attempts >= MAX_CODE_ATTEMPTS:
        raise Conflict("too many wrong codes; make a new request")
    request.code_attempts += 1
    expected = _hash_secret(app.settings.blind_index_key, code, context=f"code:{request.id}")
    if not hmac.compare_digest(expected, request.code_hash or ""):
        left = MAX_CODE_ATTEMPTS - request.code_attempts
        # The try counts even though the answer is an error: commit it before raising.
        await session.commit()
        raise ValidationFailed.for_field("code", f"wrong code; {left} tries left")
    await _mark_verified(session, request, method=VerificationMethod.EMAIL_CODE, now=now)
    return request


async def get_visible(
    session: AsyncSession,
    app: Collaborators,
    principal: Principal | None,
    token: str | None,
    request_id: uuid.UUID,
) -> PrivacyRequest:
    """The request if this caller may see it; another's request is a 404, never a 403."""
    if principal is None and not token:
        raise Unauthorized("log in, or send the request's X-Privacy-Request-Token")
    if (
        principal is not None
        and principal.kind is not PrincipalKind.USER
        and not is_officer(principal)
    ):
        raise Forbidden("privacy requests are seen by the requester and the privacy officer")
    request = await repository.get(session, request_id)
    if request is None:
        raise NotFound("no privacy request with this id")
    if is_officer(principal):
        return request
    if principal is not None:
        visible = (
            request.account_id == principal.account_id
            and request.source != RequestSource.DISCLOSURE.value
        )
    else:
        visible = _token_matches(app, request, token)
    if not visible:
        raise NotFound("no privacy request with this id")
    return request


async def page_for(
    session: AsyncSession,
    principal: Principal,
    params: PageParams,
    *,
    status: RequestStatus | None,
    type_: RequestType | None,
    overdue: bool,
    now: datetime,
) -> tuple[Sequence[PrivacyRequest], str | None]:
    if is_officer(principal):
        return await repository.page(
            session,
            params,
            status=status.value if status else None,
            type_=type_.value if type_ else None,
            overdue_at=now if overdue else None,
        )
    if principal.kind is not PrincipalKind.USER:
        raise Forbidden("privacy requests are listed for the account holder and the officer")
    if overdue:
        # A valid filter this caller may not use: a right it lacks, not bad input.
        raise Forbidden("the overdue list is the privacy officer's")
    return await repository.page(
        session,
        params,
        account_id=principal.account_id,
        status=status.value if status else None,
        type_=type_.value if type_ else None,
    )


# --------------------------------------------------------------------------------------------
# The officer's actions
# --------------------------------------------------------------------------------------------


def _subject_mail_address(request: PrivacyRequest) -> str | None:
    """Letters are answered by post (privacy statement), so only online requests are mailed."""
    if request.source in {RequestSource.ACCOUNT.value, RequestSource.EMAIL.value}:
        return request.email
    return None


async def extend(
    session: AsyncSession,
    app: Collaborators,
    officer: Principal,
    request_id: uuid.UUID,
    body: ExtendDeadline,
    caller: Caller,
) -> PrivacyRequest:
    request = await repository.get_for_update(session, request_id)
    if request is None or request.source == RequestSource.DISCLOSURE.value:
        raise NotFound("no privacy request with this id")
    now = app.now()
    if (
        request.status not in repository.WORKING
        and request.status != RequestStatus.PENDING_VERIFICATION.value
    ):
        raise Conflict(f"the request is {request.status}; only open requests are extended")
    if request.extended_at is not None:
        raise Conflict("the deadline was extended once already (AVG art. 12(3))")
    if now > request.due_at:
        # Art. 12(3): the subject must be told of an extension within the first month.
        raise Conflict("the deadline has passed; an extension must be given before it")
    request.due_at = add_months(request.due_at, body.months)
    request.extended_at = now
    request.extension_months = body.months
    request.extension_reason = body.reason
    request.overdue_flagged_at = None
    to = _subject_mail_address(request)
    mail = mails.extended(to or app.settings.privacy_officer_email, request)
    await outbox.enqueue(session, mail, now=now, privacy_request_id=request.id)
    await audit.record(
        session,
        actor=officer,
        action="privacy_request.extended",
        object_type="privacy_request",
        object_id=request.id,
        at=now,
        details={
            "months": body.months,
            "reason": body.reason,
            "due_at": request.due_at.isoformat(),
        },
        http_request_id=caller.request_id,
    )
    return request


async def reject(
    session: AsyncSession,
    app: Collaborators,
    officer: Principal,
    request_id: uuid.UUID,
    body: RejectRequest,
    caller: Caller,
) -> PrivacyRequest:
    request = await repository.get_for_update(session, request_id)
    if request is None or request.source == RequestSource.DISCLOSURE.value:
        raise NotFound("no privacy request with this id")
    if request.status not in {
        RequestStatus.PENDING_VERIFICATION.value,
        RequestStatus.VERIFIED.value,
    }:
        raise Conflict(
            f"the request is {request.status}; only requests not yet started are rejected"
        )
    now = app.now()
    tasks = (await repository.tasks_of(session, [request.id]))[request.id]
    if any(task.status != TaskStatus.PENDING.value or task.attempts for task in tasks):
        raise Conflict("a service has already started on this request")
    for task in tasks:
        await session.delete(task)
    request.status = RequestStatus.REJECTED.value
    request.rejected_at = now
    request.rejection_reason = body.reason
    request.code_hash = None
    to = _subject_mail_address(request)
    if to:
        await outbox.enqueue(
            session, mails.rejected(to, request), now=now, privacy_request_id=request.id
        )
    await audit.record(
        session,
        actor=officer,
        action="privacy_request.rejected",
        object_type="privacy_request",
        object_id=request.id,
        at=now,
        details={"reason": body.reason},
        http_request_id=caller.request_id,
    )
    return request


async def export_path(
    session: AsyncSession,
    app: Collaborators,
    principal: Principal | None,
    token: str | None,
    request_id: uuid.UUID,
    caller: Caller,
) -> tuple[PrivacyRequest, Path]:
    """The ZIP of a finished access request, for the subject only (or the officer, for a
    letter, which is answered by post)."""
    request = await get_visible(session, app, principal, token, request_id)
    if is_officer(principal):
        if request.source != RequestSource.LETTER.value:
            raise NotFound("exports are downloaded by the subject only")
        assert principal is not None  # noqa: S101
        await audit.record(
            session,
            actor=principal,
            action="privacy_request.export_downloaded",
            object_type="privacy_request",
            object_id=request.id,
            at=app.now(),
            http_request_id=caller.request_id,
        )
    if request.type not in {RequestType.ACCESS.value, RequestType.PORTABILITY.value}:
        raise NotFound("only access and portability requests have an export")
    if (
        request.status == RequestStatus.VERIFIED.value
        or request.status == RequestStatus.IN_PROGRESS.value
    ):
        raise Conflict("the export is not ready yet")
    if request.export_file is None:
        if request.export_purged_at is not None:
            raise ExportGone("the export was deleted after its retention period; ask again")
        raise NotFound("this request has no export")
    path = app.settings.exports_path / request.export_file
    if not path.is_file():
        raise ExportGone("the export is no longer available; ask again")
    return request, path


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------


def to_read(
    request: PrivacyRequest, tasks: Sequence[PrivacyTask], now: datetime
) -> PrivacyRequestRead:
    export = None
    if request.type in {RequestType.ACCESS.value, RequestType.PORTABILITY.value}:
        available = request.export_file is not None
        export = ExportRead(
            available=available,
            size_bytes=request.export_size if available else None,
            expires_at=request.export_expires_at if available else None,
            download_path=f"/v1/privacy/requests/{request.id}/export" if available else None,
        )
    extension = None
    if request.extended_at is not None:
        extension = ExtensionRead(
            months=request.extension_months or 0,
            reason=request.extension_reason or "",
            extended_at=request.extended_at,
        )
    return PrivacyRequestRead(
        id=request.id,
        type=RequestType(request.type),
        status=RequestStatus(request.status),
        source=RequestSource(request.source),
        account_id=request.account_id,
        email=request.email,
        phone=request.phone,
        message=request.message,
        grounds=request.grounds,
        changes=request.changes,
        received_at=request.received_at,
        due_at=request.due_at,
        is_overdue=request.status in repository.WORKING and request.due_at < now,
        extension=extension,
        verified_at=request.verified_at,
        verification_method=(
            VerificationMethod(request.verification_method) if request.verification_method else None
        ),
        verification_note=request.verification_note,
        completed_at=request.completed_at,
        rejection_reason=request.rejection_reason,
        failure_reason=request.failure_reason,
        tasks=[
            TaskRead(
                service=ServiceName(task.service),
                action=TaskAction(task.action),
                status=TaskStatus(task.status),
                attempts=task.attempts,
                last_error=task.last_error,
                result=task.result,
                finished_at=task.finished_at,
            )
            for task in tasks
        ],
        export=export,
    )
