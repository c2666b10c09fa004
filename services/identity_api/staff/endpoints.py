"""``/v1/staff/...``: staff administration and audited account look-ups;
``/internal/v1/staff/introspect``: whether a staff login still counts."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query

from libs.common.auth import (
    ACCESS_REASON_HEADER,
    Principal,
    Role,
    ServiceScope,
    require_service,
    require_staff,
    stated_reason,
)
from libs.common.db import SessionDep
from libs.common.errors import problem_responses
from libs.common.pagination import Page, PageParamsDep
from services.identity_api.accounts.schemas import AccountStaffRead
from services.identity_api.dependencies import ContextDep
from services.identity_api.models import StaffAccessLog, StaffUser
from services.identity_api.staff import service
from services.identity_api.staff.schemas import (
    AccessLogRead,
    StaffIntrospection,
    StaffIntrospectionRequest,
    StaffRead,
)

router = APIRouter(prefix="/v1/staff", tags=["staff"])
internal_router = APIRouter(prefix="/internal/v1/staff", tags=["internal"])


AdminDep = Annotated[Principal, Depends(require_staff(Role.ADMIN))]
AnyStaffDep = Annotated[
    Principal, Depends(require_staff(Role.SUPPORT, Role.PRIVACY_OFFICER, Role.ADMIN))
]
OfficerDep = Annotated[Principal, Depends(require_staff(Role.PRIVACY_OFFICER))]


async def access_reason(
    _principal: AnyStaffDep,
    header: Annotated[
        str | None,
        Header(
            alias=ACCESS_REASON_HEADER,
            max_length=500,
            description="Required: why you need this account's data (e.g. the ticket number), "
            "at least 5 characters. Recorded in the access log.",
            examples=["ticket 4711: customer asks about an invoice"],
        ),
    ] = None,
    query: Annotated[
        str | None,
        Query(
            alias="reason",
            max_length=500,
            deprecated=True,
            description=f"Deprecated: send the `{ACCESS_REASON_HEADER}` header instead (a query "
            "string ends up in URLs, browser history and proxy logs). Still accepted; the header "
            "wins when both are sent.",
        ),
    ] = None,
) -> str:
    """The staff member's stated reason. Depends on the staff check so that a caller without the
    right gets 401/403 before being told what a valid request looks like (decision 0605)."""
    if header is not None or query is None:
        return stated_reason(header)
    return stated_reason(query, field="reason", location="query")


AccessReasonDep = Annotated[str, Depends(access_reason)]


def _staff(row: StaffUser) -> StaffRead:
    return StaffRead(
        id=row.id,
        email=row.email,
        name=row.name,
        role=row.role,
        is_active=row.is_active,
        created_at=row.created_at,
        last_login_at=row.last_login_at,
        disabled_at=row.disabled_at,
    )


def _entry(row: StaffAccessLog) -> AccessLogRead:
    return AccessLogRead(
        id=row.id,
        staff_id=row.staff_id,
        account_id=row.account_id,
        action=row.action,
        fields=list(row.fields),
        query=row.query,
        reason=row.reason,
        ip=row.ip,
        created_at=row.created_at,
    )


@router.get(
    "/me",
    response_model=StaffRead,
    summary="The logged-in staff member",
    responses=problem_responses(401, 403),
)
async def staff_me(session: SessionDep, principal: AnyStaffDep) -> StaffRead:
    return _staff(await service.acting_staff(session, principal))


@router.get(
    "/users",
    response_model=Page[StaffRead],
    summary="List staff (admins)",
    responses=problem_responses(401, 403, 422),
)
async def list_staff(
    session: SessionDep, params: PageParamsDep, principal: AdminDep
) -> Page[StaffRead]:
    await service.acting_staff(session, principal)
    rows, cursor = await service.list_staff(session, params)
    return Page[StaffRead](data=[_staff(row) for row in rows], next_cursor=cursor)


@router.post(
    "/users/{staff_id}/disable",
    response_model=StaffRead,
    summary="Disable a staff member (admins)",
    description="Their logins end: refresh tokens are revoked and access tokens refused.",
    responses=problem_responses(401, 403, 404, 409),
)
async def disable_staff(
    staff_id: uuid.UUID, session: SessionDep, ctx: ContextDep, principal: AdminDep
) -> StaffRead:
    actor = await service.acting_staff(session, principal)
    return _staff(await service.set_disabled(session, ctx, actor, staff_id, disabled=True))


@router.post(
    "/users/{staff_id}/enable",
    response_model=StaffRead,
    summary="Enable a staff member again (admins)",
    responses=problem_responses(401, 403, 404),
)
async def enable_staff(
    staff_id: uuid.UUID, session: SessionDep, ctx: ContextDep, principal: AdminDep
) -> StaffRead:
    actor = await service.acting_staff(session, principal)
    return _staff(await service.set_disabled(session, ctx, actor, staff_id, disabled=False))


@router.get(
    "/accounts/{account_id}",
    response_model=AccountStaffRead,
    summary="Look up an account (audited)",
    description="Support, privacy officer and admins. The read is written to the access log "
    f"with the reason sent in the `{ACCESS_REASON_HEADER}` header. The IBAN is masked.",
    responses=problem_responses(401, 403, 404, 422),
)
async def read_account(
    account_id: uuid.UUID,
    session: SessionDep,
    ctx: ContextDep,
    principal: AnyStaffDep,
    reason: AccessReasonDep,
) -> AccountStaffRead:
    actor = await service.acting_staff(session, principal)
    return await service.read_account(session, ctx, actor, account_id, reason)


@router.get(
    "/accounts",
    response_model=Page[AccountStaffRead],
    summary="Find accounts by e-mail or debtor number (audited)",
    description="Support, privacy officer and admins. Each page read is written to the access "
    f"log with the search and the reason sent in the `{ACCESS_REASON_HEADER}` header, one entry "
    "per account shown.",
    responses=problem_responses(401, 403, 422),
)
async def search_accounts(
    session: SessionDep,
    ctx: ContextDep,
    params: PageParamsDep,
    principal: AnyStaffDep,
    reason: AccessReasonDep,
    email: Annotated[str | None, Query(max_length=254)] = None,
    debtor_number: Annotated[str | None, Query(max_length=16)] = None,
) -> Page[AccountStaffRead]:
    actor = await service.acting_staff(session, principal)
    found, cursor = await service.search_accounts(
        session, ctx, actor, params, email=email, debtor_number=debtor_number, reason=reason
    )
    return Page[AccountStaffRead](data=found, next_cursor=cursor)


@router.get(
    "/access-log",
    response_model=Page[AccessLogRead],
    summary="Staff reads of account data (privacy officer, admins)",
    responses=problem_responses(401, 403, 422),
)
async def access_log(
    session: SessionDep,
    params: PageParamsDep,
    principal: OfficerDep,
    account_id: uuid.UUID | None = None,
    staff_id: uuid.UUID | None = None,
) -> Page[AccessLogRead]:
    await service.acting_staff(session, principal)
    rows, cursor = await service.access_log(
        session, params, account_id=account_id, staff_id=staff_id
    )
    return Page[AccessLogRead](data=[_entry(row) for row in rows], next_cursor=cursor)


@internal_router.post(
    "/introspect",
    response_model=StaffIntrospection,
    summary="Check a staff login (services only)",
    description='`{"active": false, "roles": []}` for unknown and disabled staff members. '
    "Shipping and privacy ask this for every staff token they have not checked in the last "
    "30 seconds (negative answers 5 seconds), so disabling a staff member takes effect "
    "everywhere within 30 seconds (decision 0108).",
    responses=problem_responses(401, 403, 422),
)
async def introspect_staff(
    body: StaffIntrospectionRequest,
    session: SessionDep,
    _service: Annotated[Principal, Depends(require_service(ServiceScope.INTROSPECT))],
) -> StaffIntrospection:
    roles = await service.current_roles(session, body.staff_id)
    if roles is None:
        return StaffIntrospection(active=False)
    return StaffIntrospection(active=True, roles=roles)
