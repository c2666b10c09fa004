"""Staff users and audited access to account holders' data.

AVG art. 5(2) and 32: only staff who need personal data see it, and every read is recorded
with who, what, when and why, so the privacy officer can check it.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.auth import Principal
from libs.common.errors import Conflict, Forbidden, NotFound, ValidationFailed
from libs.common.pagination import PageParams
from libs.common.validation import normalise_email
from services.identity_api.accounts import repository as accounts
from services.identity_api.accounts.schemas import AccountStaffRead
from services.identity_api.accounts.service import staff_view
from services.identity_api.auth import repository as tokens
from services.identity_api.auth.service import Context, check_password
from services.identity_api.models import StaffAccessLog, StaffRole, StaffUser
from services.identity_api.passwords.hashing import PasswordHasher
from services.identity_api.staff import repository
from services.identity_api.subjects.blind_index import email_search

ACCOUNT_FIELDS = sorted(AccountStaffRead.model_fields)


async def create_staff(
    session: AsyncSession,
    passwords: PasswordHasher,
    *,
    email: str,
    role: StaffRole,
    password: str,
    name: str | None,
    now: datetime,
) -> StaffUser:
    try:
        email = normalise_email(email)
    except ValueError as exc:
        raise ValidationFailed.for_field("email", str(exc)) from exc
    check_password(password, field="password", context=(email, name))
    if await repository.by_email(session, email) is not None:
        raise Conflict("a staff member with this e-mail address already exists")
    staff = StaffUser(
        email=email,
        name=name,
        role=role,
        password_hash=await passwords.hash(password),
        created_at=now,
        updated_at=now,
    )
    try:
        await repository.add(session, staff)
    except repository.DuplicateStaffEmail as exc:
        raise Conflict("a staff member with this e-mail address already exists") from exc
    return staff


async def acting_staff(session: AsyncSession, principal: Principal) -> StaffUser:
    """The staff member behind a token, refused when disabled since the token was issued."""
    staff_id = principal.staff_id
    staff = await repository.get(session, staff_id) if staff_id else None
    if staff is None or not staff.is_active:
        raise Forbidden("this staff login is disabled")
    return staff


async def current_roles(session: AsyncSession, staff_id: uuid.UUID) -> list[StaffRole] | None:
    """The roles of an active staff member; ``None`` when unknown or disabled."""
    staff = await repository.get(session, staff_id)
    if staff is None or not staff.is_active:
        return None
    return [staff.role]


async def list_staff(
    session: AsyncSession, params: PageParams
) -> tuple[Sequence[StaffUser], str | None]:
    return await repository.page(session, params)


async def set_disabled(
    session: AsyncSession, ctx: Context, actor: StaffUser, staff_id: uuid.UUID, *, disabled: bool
) -> StaffUser:
    staff = await repository.get(session, staff_id)
    if staff is None:
        raise NotFound("no staff member with this id")
    if staff.id == actor.id and disabled:
        raise Conflict("you cannot disable yourself")
    if disabled and staff.disabled_at is None:
        staff.disabled_at = ctx.now
        await tokens.revoke_all_for_staff(session, staff.id, ctx.now)
    elif not disabled:
        staff.disabled_at = None
    staff.updated_at = ctx.now
    await session.flush()
    return staff


async def _log_access(
    session: AsyncSession,
    ctx: Context,
    actor: StaffUser,
    *,
    account_id: uuid.UUID | None,
    action: str,
    reason: str,
    fields: list[str],
    query: str | None = None,
) -> None:
    await repository.add_access(
        session,
        StaffAccessLog(
            staff_id=actor.id,
            account_id=account_id,
            action=action,
            fields=fields,
            query=query,
            reason=reason,
            ip=ctx.origin.ip,
            created_at=ctx.now,
        ),
    )


async def read_account(
    session: AsyncSession, ctx: Context, actor: StaffUser, account_id: uuid.UUID, reason: str
) -> AccountStaffRead:
    account = await accounts.get(session, account_id)
    if account is None:
        raise NotFound("no account with this id")
    await _log_access(
        session,
        ctx,
        actor,
        account_id=account.id,
        action="account.read",
        reason=reason,
        fields=ACCOUNT_FIELDS,
    )
    return staff_view(ctx.runtime.cipher, account)


async def search_accounts(
    session: AsyncSession,
    ctx: Context,
    actor: StaffUser,
    params: PageParams,
    *,
    email: str | None,
    debtor_number: str | None,
    reason: str,
) -> tuple[list[AccountStaffRead], str | None]:
    if not email and not debtor_number:
        raise ValidationFailed.for_field(
            "email", "search by email or debtor_number", location="query"
        )
    found, next_cursor = await accounts.find(
        session, params, email=email, debtor_number=debtor_number
    )
    # The address is logged as its blind index: a search that finds nobody names a person we
    # may hold nothing else about, and a privacy request for the address still finds it (0108).
    query = " ".join(
        part
        for part in (
            email_search(ctx.runtime.hash_key, email) if email else "",
            f"debtor_number={debtor_number}" if debtor_number else "",
        )
        if part
    )
    # Each page is logged with the accounts it shows, so the log says who saw what.
    if not found:
        await _log_access(
            session,
            ctx,
            actor,
            account_id=None,
            action="account.search",
            reason=reason,
            fields=[],
            query=query,
        )
    for account in found:
        await _log_access(
            session,
            ctx,
            actor,
            account_id=account.id,
            action="account.search",
            reason=reason,
            fields=ACCOUNT_FIELDS,
            query=query,
        )
    return [staff_view(ctx.runtime.cipher, account) for account in found], next_cursor


async def access_log(
    session: AsyncSession,
    params: PageParams,
    *,
    account_id: uuid.UUID | None,
    staff_id: uuid.UUID | None,
) -> tuple[Sequence[StaffAccessLog], str | None]:
    return await repository.page_access_log(
        session, params, account_id=account_id, staff_id=staff_id
    )
