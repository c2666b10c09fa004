"""Registration and self-service of account holders."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.crypto import FieldCipher
from libs.common.db import uuid7
from libs.common.errors import Conflict, FieldError, NotFound, TooManyRequests, ValidationFailed
from libs.common.validation import normalise_postcode
from services.identity_api.accounts import repository
from services.identity_api.accounts.schemas import (
    REQUIRED_FIELDS,
    AccountCreate,
    AccountRead,
    AccountStaffRead,
    AccountUpdate,
    OwnAccountUpdate,
    SenderDetails,
    mask_iban,
)
from services.identity_api.auth.service import (
    Context,
    check_password,
    count_failed_login,
    login_wait,
    send_verification_mail,
    set_password,
)
from services.identity_api.mail import messages, outbox
from services.identity_api.models import Account, SecurityEventType
from services.identity_api.security_events.service import record

EMAIL_TAKEN = "an account with this e-mail address already exists"


def email_taken() -> Conflict:
    """``409`` naming ``email``, so that a form can mark the field it came from."""
    return Conflict(
        f"email: {EMAIL_TAKEN}",
        errors=[FieldError(field="email", location="body", message=EMAIL_TAKEN, type="taken")],
    )


def iban_context(account_id: uuid.UUID) -> str:
    return f"accounts.iban:{account_id}"


def read_iban(cipher: FieldCipher, account: Account) -> str | None:
    if account.iban_encrypted is None:
        return None
    return cipher.decrypt(account.iban_encrypted, context=iban_context(account.id))


def seal_iban(cipher: FieldCipher, account_id: uuid.UUID, iban: str | None) -> str | None:
    return cipher.encrypt(iban, context=iban_context(account_id)) if iban else None


def _fields(account: Account) -> dict[str, Any]:
    return {
        "account_id": account.id,
        "debtor_number": account.debtor_number,
        "email": account.email,
        "email_verified": account.email_verified_at is not None,
        "name": account.name,
        "contact_person": account.contact_person,
        "country": account.country,
        "postcode": account.postcode,
        "house_number": account.house_number,
        "street": account.street,
        "city": account.city,
        "kvk_number": account.kvk_number,
        "account_holder": account.account_holder,
        "phone": account.phone,
        "website": account.website,
        "vat_number": account.vat_number,
        "created_at": account.created_at,
        "updated_at": account.updated_at,
    }


def owner_view(cipher: FieldCipher, account: Account) -> AccountRead:
    return AccountRead(**_fields(account), iban=read_iban(cipher, account))


def staff_view(cipher: FieldCipher, account: Account) -> AccountStaffRead:
    return AccountStaffRead(
        **_fields(account),
        iban=mask_iban(read_iban(cipher, account)),
        is_restricted=account.is_restricted,
        erased=account.erased_at is not None,
    )


async def register(session: AsyncSession, ctx: Context, data: AccountCreate) -> Account:
    wait = await ctx.limiter.hit(
        ctx.runtime.settings.registrations_per_ip, "register", ctx.origin.ip or "unknown"
    )
    if wait:
        raise TooManyRequests(wait, "too many registrations from this address; try again later")
    check_password(data.password, field="password", context=(data.email, data.name))
    if await repository.email_taken(session, data.email):
        raise email_taken()
    # Hash before taking a debtor number: the counter row stays locked until commit.
    password_hash = await ctx.runtime.passwords.hash(data.password)
    account_id = uuid7()
    values = data.model_dump(exclude={"email", "password", "iban"})
    account = Account(
        id=account_id,
        email=data.email,
        password_hash=password_hash,
        debtor_number=await repository.next_debtor_number(session),
        iban_encrypted=seal_iban(ctx.runtime.cipher, account_id, data.iban),
        created_at=ctx.now,
        updated_at=ctx.now,
        **values,
    )
    try:
        await repository.add(session, account)
    except repository.DuplicateEmail as exc:
        raise email_taken() from exc
    await record(session, account.id, SecurityEventType.REGISTERED, origin=ctx.origin, now=ctx.now)
    await send_verification_mail(session, ctx.runtime, account, ctx.now)
    return account


async def get_own(session: AsyncSession, account_id: uuid.UUID) -> Account:
    account = await repository.get_active(session, account_id)
    if account is None:
        raise NotFound("this account no longer exists")
    return account


async def apply_changes(
    session: AsyncSession,
    ctx: Context,
    account: Account,
    changes: AccountUpdate,
    *,
    field_prefix: str = "",
) -> list[str]:
    """Apply validated changes (self-service or AVG art. 16 rectification); returns the names
    of the fields that changed."""
    sent = changes.model_dump(exclude_unset=True)
    for name in REQUIRED_FIELDS:
        if name in sent and sent[name] is None:
            raise ValidationFailed.for_field(f"{field_prefix}{name}", "cannot be empty")
    if "email" in sent and sent["email"] is None:
        raise ValidationFailed.for_field(f"{field_prefix}email", "cannot be empty")
    country = sent.get("country", account.country)
    if "postcode" in sent or "country" in sent:
        postcode = sent.get("postcode", account.postcode)
        try:
            sent["postcode"] = normalise_postcode(postcode, country)
        except ValueError as exc:
            raise ValidationFailed.for_field(f"{field_prefix}postcode", str(exc)) from exc
    changed: list[str] = []
    old_email = account.email
    if "iban" in sent:
        iban = sent.pop("iban")
        if iban != read_iban(ctx.runtime.cipher, account):
            account.iban_encrypted = seal_iban(ctx.runtime.cipher, account.id, iban)
            changed.append("iban")
    for name, value in sent.items():
        if getattr(account, name) != value:
            setattr(account, name, value)
            changed.append(name)
    if not changed:
        return changed
    account.updated_at = ctx.now
    email_changed = (
        "email" in changed and (old_email or "").lower() != (account.email or "").lower()
    )
    if email_changed:
        account.email_verified_at = None
    try:
        await repository.flush_email_change(session)
    except repository.DuplicateEmail as exc:
        raise email_taken() from exc
    await record(
        session,
        account.id,
        SecurityEventType.EMAIL_CHANGED if email_changed else SecurityEventType.ACCOUNT_UPDATED,
        origin=ctx.origin,
        now=ctx.now,
        fields=changed,
    )
    if email_changed:
        if old_email:
            notice = messages.email_changed(
                old_email,
                name=account.contact_person or account.name,
                new_address=account.email or "",
            )
            await outbox.enqueue(session, notice, now=ctx.now, account_id=account.id)
        await send_verification_mail(session, ctx.runtime, account, ctx.now)
    return changed


def _needs_current_password(cipher: FieldCipher, account: Account, changes: AccountUpdate) -> bool:
    """Whether the change redirects account mail or payouts (a new e-mail address or IBAN)."""
    sent = changes.model_fields_set
    new_email = "email" in sent and (changes.email or "").lower() != (account.email or "").lower()
    new_iban = "iban" in sent and changes.iban != read_iban(cipher, account)
    return new_email or new_iban


async def verify_current_password(
    ctx: Context, account: Account, password: str | None, *, field: str = "current_password"
) -> None:
    """Check the holder's current password before a change a stolen login must not make.

    Wrong guesses count as failed logins of the address, so a stolen access token does not
    become a way to guess the password."""
    assert account.email is not None  # noqa: S101 - active accounts have both
    assert account.password_hash is not None  # noqa: S101
    if password is None:
        raise ValidationFailed.for_field(field, "your current password is needed for this change")
    wait = await login_wait(ctx, account.email)
    if wait:
        raise TooManyRequests(wait, "too many wrong passwords; try again later")
    valid, _ = await ctx.runtime.passwords.verify_and_update(password, account.password_hash)
    if not valid:
        await count_failed_login(ctx, account.email)
        raise ValidationFailed.for_field(field, "this is not your current password")


async def update_own(
    session: AsyncSession, ctx: Context, account_id: uuid.UUID, changes: OwnAccountUpdate
) -> Account:
    account = await get_own(session, account_id)
    if _needs_current_password(ctx.runtime.cipher, account, changes):
        await verify_current_password(ctx, account, changes.current_password)
    if changes.email is not None and await repository.email_taken(
        session, changes.email, except_id=account.id
    ):
        raise email_taken()
    fields = AccountUpdate.model_construct(
        changes.model_fields_set - {"current_password"},
        **{name: getattr(changes, name) for name in AccountUpdate.model_fields},
    )
    await apply_changes(session, ctx, account, fields)
    return account


async def change_password(
    session: AsyncSession,
    ctx: Context,
    account_id: uuid.UUID,
    *,
    current_password: str,
    new_password: str,
) -> None:
    account = await get_own(session, account_id)
    await verify_current_password(ctx, account, current_password)
    assert account.email is not None  # noqa: S101 - checked by verify_current_password
    check_password(new_password, field="new_password", context=(account.email, account.name))
    if current_password == new_password:
        raise ValidationFailed.for_field("new_password", "choose a password you did not use now")
    await set_password(session, ctx, account, new_password)
    await record(
        session, account.id, SecurityEventType.PASSWORD_CHANGED, origin=ctx.origin, now=ctx.now
    )


async def sender_details(session: AsyncSession, account_id: uuid.UUID) -> SenderDetails:
    account = await repository.get_active(session, account_id)
    if account is None:
        raise NotFound("no account with this id")
    return SenderDetails(
        account_id=account.id,
        debtor_number=account.debtor_number,
        name=account.name,
        contact_person=account.contact_person,
        street=account.street,
        house_number=account.house_number,
        postcode=account.postcode,
        city=account.city,
        country=account.country,
        email=account.email,
        email_verified=account.email_verified_at is not None,
        phone=account.phone,
        is_restricted=account.is_restricted,
    )
