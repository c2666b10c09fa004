"""The token grants, logout, e-mail verification and password reset."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.auth import ACCOUNT_SCOPES, API_AUDIENCE, INTERNAL_AUDIENCE, PrincipalKind
from libs.common.crypto import keyed_hash
from libs.common.db import uuid7
from libs.common.errors import TooManyRequests, ValidationFailed
from libs.common.ratelimit import RateLimiter
from services.identity_api.accounts import repository as accounts
from services.identity_api.auth import repository
from services.identity_api.auth.errors import InvalidClient, InvalidGrant, InvalidScope
from services.identity_api.mail import messages, outbox
from services.identity_api.models import (
    Account,
    MailToken,
    MailTokenPurpose,
    RefreshToken,
    SecurityEventType,
    StaffUser,
    SubjectKind,
)
from services.identity_api.origin import Origin
from services.identity_api.passwords.policy import password_problem
from services.identity_api.runtime import IdentityRuntime
from services.identity_api.security_events.service import record
from services.identity_api.staff import repository as staff_users

STAFF_SCOPE = "staff"
BAD_CREDENTIALS = "the e-mail address or password is wrong"


@dataclass(frozen=True, slots=True)
class IssuedTokens:
    access_token: str
    expires_in: int
    scope: str
    refresh_token: str | None = None
    device_cookie: str | None = None
    """Set after a password login: the browser's device cookie for that login name."""


@dataclass(frozen=True, slots=True)
class Context:
    """What every grant needs besides the session."""

    runtime: IdentityRuntime
    limiter: RateLimiter
    now: datetime
    origin: Origin


# --------------------------------------------------------------------------------------------
# Token minting
# --------------------------------------------------------------------------------------------


async def mint_access_token(
    session: AsyncSession,
    ctx: Context,
    *,
    subject: str,
    kind: PrincipalKind,
    scopes: list[str],
    roles: list[str] | None = None,
) -> tuple[str, int]:
    settings = ctx.runtime.settings
    service = kind is PrincipalKind.SERVICE
    ttl = settings.service_token_ttl_seconds if service else settings.access_token_ttl_seconds
    issued = int(ctx.now.timestamp())
    claims: dict[str, Any] = {
        "iss": settings.jwt_issuer,
        "aud": INTERNAL_AUDIENCE if service else API_AUDIENCE,
        "sub": subject,
        "kind": kind.value,
        "scope": " ".join(scopes),
        "iat": issued,
        "exp": issued + ttl,
        "jti": uuid7().hex,
    }
    if kind is PrincipalKind.STAFF:
        claims["roles"] = roles or []
    token = await ctx.runtime.keys.sign(session, ctx.now, claims)
    return token, ttl


@dataclass(frozen=True, slots=True)
class Login:
    """What a refresh-token family keeps of the login that started it."""

    family_id: uuid.UUID
    authenticated_at: datetime
    scopes: list[str]


def family_ends_at(ctx: Context, authenticated_at: datetime) -> datetime:
    """No rotation keeps a login alive past this: a stolen refresh token, used before its
    holder's, stays usable for at most this long."""
    return authenticated_at + timedelta(days=ctx.runtime.settings.refresh_family_max_days)


async def issue_refresh_token(
    session: AsyncSession,
    ctx: Context,
    *,
    account_id: uuid.UUID | None = None,
    staff_id: uuid.UUID | None = None,
    login: Login | None = None,
    scopes: list[str] | None = None,
) -> str:
    if login is None:
        login = Login(family_id=uuid7(), authenticated_at=ctx.now, scopes=scopes or [])
    token = secrets.token_urlsafe(32)
    expires_at = ctx.now + timedelta(days=ctx.runtime.settings.refresh_token_ttl_days)
    await repository.add(
        session,
        RefreshToken(
            family_id=login.family_id,
            subject_kind=SubjectKind.USER if account_id else SubjectKind.STAFF,
            account_id=account_id,
            staff_id=staff_id,
            token_hash=keyed_hash(ctx.runtime.hash_key, token),
            scope=" ".join(login.scopes),
            authenticated_at=login.authenticated_at,
            created_at=ctx.now,
            expires_at=min(expires_at, family_ends_at(ctx, login.authenticated_at)),
        ),
    )
    return token


async def _tokens_for_account(
    session: AsyncSession,
    ctx: Context,
    account: Account,
    scopes: list[str],
    login: Login | None = None,
) -> IssuedTokens:
    access, ttl = await mint_access_token(
        session, ctx, subject=str(account.id), kind=PrincipalKind.USER, scopes=scopes
    )
    refresh = await issue_refresh_token(
        session, ctx, account_id=account.id, login=login, scopes=scopes
    )
    return IssuedTokens(access, ttl, " ".join(scopes), refresh)


async def _tokens_for_staff(
    session: AsyncSession, ctx: Context, staff: StaffUser, login: Login | None = None
) -> IssuedTokens:
    access, ttl = await mint_access_token(
        session, ctx, subject=str(staff.id), kind=PrincipalKind.STAFF, scopes=[], roles=[staff.role]
    )
    refresh = await issue_refresh_token(session, ctx, staff_id=staff.id, login=login)
    return IssuedTokens(access, ttl, "", refresh)


# --------------------------------------------------------------------------------------------
# Password grant, with throttling of failed logins
# --------------------------------------------------------------------------------------------


DEVICE_COOKIE = "parcelpro_device"
"""A browser that logged in with a login name (decision 0105): ``v1.<issued>.<nonce>.<mac>``."""


def _login_key(email: str) -> str:
    # Hashed: rate-limit keys (possibly in Redis) must not hold e-mail addresses.
    return hashlib.sha256(email.strip().lower().encode()).hexdigest()


def _device_mac(key: bytes, email: str, issued: str, nonce: str) -> str:
    return keyed_hash(key, f"device|{_login_key(email)}|{issued}|{nonce}")


def new_device_cookie(ctx: Context, email: str) -> str:
    """The device cookie of a browser that just logged in as ``email``: bound to that login
    name and signed, so it cannot be made for another; nothing of it is stored."""
    issued, nonce = str(int(ctx.now.timestamp())), secrets.token_urlsafe(16)
    return f"v1.{issued}.{nonce}.{_device_mac(ctx.runtime.hash_key, email, issued, nonce)}"


def known_device(ctx: Context, email: str, cookie: str | None) -> str | None:
    """The device's own nonce when ``cookie`` is a device cookie issued to ``email`` within
    ``device_cookie_days``; ``None`` for anything else (absent, another login's, forged,
    expired or garbled: such a browser is an unknown device, never refused for it)."""
    if not cookie:
        return None
    version, _, rest = cookie.partition(".")
    issued, _, rest = rest.partition(".")
    nonce, _, mac = rest.partition(".")
    if version != "v1" or not issued.isdigit() or not nonce or not mac:
        return None
    age = ctx.now.timestamp() - int(issued)
    if not 0 <= age <= ctx.runtime.settings.device_cookie_days * 86_400:
        return None
    expected = _device_mac(ctx.runtime.hash_key, email, issued, nonce)
    return nonce if hmac.compare_digest(mac.encode(), expected.encode()) else None


def _login_counters(ctx: Context, email: str, device: str | None) -> tuple[tuple[str, str], ...]:
    """(namespace, key) of the counters a login attempt is judged by: the login name's, or on a
    device it logged in on before, that device's own, so that someone guessing the password
    elsewhere cannot lock its owner out (OWASP's device cookies); and the client address's."""
    own = ("login-device", device) if device is not None else ("login", _login_key(email))
    return own, ("login-ip", ctx.origin.ip or "unknown")


async def login_wait(ctx: Context, email: str, *, device: str | None = None) -> int:
    """Seconds to wait before another login attempt for this e-mail (or this known device of
    it) or from this address."""
    settings = ctx.runtime.settings
    (own, own_key), (ip, ip_key) = _login_counters(ctx, email, device)
    return max(
        await ctx.limiter.is_limited(settings.login_failures_per_account, own, own_key),
        await ctx.limiter.is_limited(settings.login_failures_per_ip, ip, ip_key),
    )


async def count_failed_login(ctx: Context, email: str, *, device: str | None = None) -> None:
    settings = ctx.runtime.settings
    (own, own_key), (ip, ip_key) = _login_counters(ctx, email, device)
    await ctx.limiter.hit(settings.login_failures_per_account, own, own_key)
    await ctx.limiter.hit(settings.login_failures_per_ip, ip, ip_key)


def _requested_scopes(scope: str) -> tuple[bool, list[str]]:
    requested = set(scope.split())
    staff = STAFF_SCOPE in requested
    requested.discard(STAFF_SCOPE)
    unknown = requested - ACCOUNT_SCOPES
    if unknown:
        raise InvalidScope(f"unknown scope(s): {', '.join(sorted(unknown))}")
    return staff, sorted(requested or ACCOUNT_SCOPES)


async def password_grant(
    session: AsyncSession,
    ctx: Context,
    *,
    username: str,
    password: str,
    scope: str,
    device_cookie: str | None = None,
) -> IssuedTokens:
    """Log in an account holder (or, when no account has the address or ``scope=staff`` is
    asked for, a staff member).

    Unknown addresses, erased accounts and wrong passwords get the same answer after the same
    work (a dummy hash is verified), and every failure counts against both the address (or,
    from a browser that logged in with it before, that device) and the client's IP. While
    throttled, not even the right password is checked. A login hands out a new device cookie.
    """
    staff_requested, scopes = _requested_scopes(scope)
    device = known_device(ctx, username, device_cookie)
    wait = await login_wait(ctx, username, device=device)
    if wait:
        raise TooManyRequests(wait, "too many failed logins; try again later")
    account = None if staff_requested else await accounts.by_email(session, username)
    staff = await staff_users.by_email(session, username) if account is None else None
    stored_hash: str | None = None
    if account is not None and account.is_active:
        stored_hash = account.password_hash
    elif staff is not None and staff.is_active:
        stored_hash = staff.password_hash
    passwords = ctx.runtime.passwords
    if stored_hash is None:
        await passwords.verify_against_nothing(password)
        valid, upgraded = False, None
    else:
        valid, upgraded = await passwords.verify_and_update(password, stored_hash)
    if not valid:
        await count_failed_login(ctx, username, device=device)
        if account is not None and account.is_active:
            await record(
                session, account.id, SecurityEventType.LOGIN_FAILED, origin=ctx.origin, now=ctx.now
            )
            # The failure is recorded even though the request fails.
            await session.commit()
        raise InvalidGrant(BAD_CREDENTIALS)
    if account is not None:
        if upgraded is not None:
            account.password_hash = upgraded
            await record(
                session,
                account.id,
                SecurityEventType.PASSWORD_HASH_UPGRADED,
                origin=ctx.origin,
                now=ctx.now,
            )
        await record(
            session, account.id, SecurityEventType.LOGIN_SUCCEEDED, origin=ctx.origin, now=ctx.now
        )
        issued = await _tokens_for_account(session, ctx, account, scopes)
    else:
        assert staff is not None  # noqa: S101 - a hash was found, so one of the two exists
        if upgraded is not None:
            staff.password_hash = upgraded
        staff.last_login_at = ctx.now
        await session.flush()
        issued = await _tokens_for_staff(session, ctx, staff)
    return replace(issued, device_cookie=new_device_cookie(ctx, username))


# --------------------------------------------------------------------------------------------
# Refresh-token grant and logout
# --------------------------------------------------------------------------------------------


async def _revoke_reused_family(session: AsyncSession, ctx: Context, row: RefreshToken) -> None:
    await repository.revoke_family(session, row.family_id, ctx.now)
    if row.account_id is not None:
        await record(
            session,
            row.account_id,
            SecurityEventType.REFRESH_TOKEN_REUSED,
            origin=ctx.origin,
            now=ctx.now,
            family_id=str(row.family_id),
        )
    # OAuth 2.0 Security BCP (RFC 9700 4.14.2): reuse of a rotated refresh token means it may
    # have been stolen; the revocation must stand although this request fails.
    await session.commit()


async def refresh_grant(session: AsyncSession, ctx: Context, *, refresh_token: str) -> IssuedTokens:
    row = await repository.refresh_token_by_hash(
        session, keyed_hash(ctx.runtime.hash_key, refresh_token)
    )
    if (
        row is None
        or row.revoked_at is not None
        or row.expires_at <= ctx.now
        # Checked as well as ``expires_at``: a lowered maximum ends older logins too.
        or family_ends_at(ctx, row.authenticated_at) <= ctx.now
    ):
        raise InvalidGrant("the refresh token is unknown, expired or revoked")
    if row.rotated_at is not None or not await repository.mark_rotated(session, row.id, ctx.now):
        await _revoke_reused_family(session, ctx, row)
        raise InvalidGrant("the refresh token was already used; this login was signed out")
    # The login's grant, never more: a scope removed since is dropped, none is added.
    login = Login(
        family_id=row.family_id,
        authenticated_at=row.authenticated_at,
        scopes=sorted(set(row.scope.split()) & ACCOUNT_SCOPES),
    )
    if row.account_id is not None:
        account = await accounts.get_active(session, row.account_id)
        if account is None:
            raise InvalidGrant("the account no longer exists")
        return await _tokens_for_account(session, ctx, account, login.scopes, login=login)
    staff = await staff_users.get(session, row.staff_id) if row.staff_id else None
    if staff is None or not staff.is_active:
        raise InvalidGrant("this staff login is disabled")
    return await _tokens_for_staff(session, ctx, staff, login=login)


async def logout(session: AsyncSession, ctx: Context, *, refresh_token: str) -> None:
    """Revoke the login the refresh token belongs to (RFC 7009: unknown tokens are fine)."""
    row = await repository.refresh_token_by_hash(
        session, keyed_hash(ctx.runtime.hash_key, refresh_token)
    )
    if row is None or row.revoked_at is not None:
        return
    await repository.revoke_family(session, row.family_id, ctx.now)
    if row.account_id is not None:
        await record(
            session, row.account_id, SecurityEventType.LOGGED_OUT, origin=ctx.origin, now=ctx.now
        )


# --------------------------------------------------------------------------------------------
# Client-credentials grant (services)
# --------------------------------------------------------------------------------------------


async def client_credentials_grant(
    session: AsyncSession, ctx: Context, *, client_id: str, client_secret: str, scope: str
) -> IssuedTokens:
    settings = ctx.runtime.settings
    wait = await ctx.limiter.is_limited(
        settings.login_failures_per_ip, "client-ip", ctx.origin.ip or "unknown"
    )
    if wait:
        raise TooManyRequests(wait, "too many failed client authentications")
    client = settings.service_clients.get(client_id)
    expected = client.secret if client is not None else secrets.token_urlsafe(16)
    if client is None or not hmac.compare_digest(client_secret.encode(), expected.encode()):
        await ctx.limiter.hit(
            settings.login_failures_per_ip, "client-ip", ctx.origin.ip or "unknown"
        )
        raise InvalidClient("unknown client or wrong secret")
    granted = [s.value for s in client.scopes]
    requested = scope.split()
    if requested:
        denied = set(requested) - set(granted)
        if denied:
            raise InvalidScope(f"scope(s) not granted to {client_id}: {', '.join(sorted(denied))}")
        granted = sorted(set(requested))
    access, ttl = await mint_access_token(
        session, ctx, subject=f"service:{client_id}", kind=PrincipalKind.SERVICE, scopes=granted
    )
    return IssuedTokens(access, ttl, " ".join(granted))


# --------------------------------------------------------------------------------------------
# E-mail verification and password reset
# --------------------------------------------------------------------------------------------


async def issue_mail_token(
    session: AsyncSession,
    runtime: IdentityRuntime,
    account: Account,
    purpose: MailTokenPurpose,
    now: datetime,
) -> str:
    assert account.email is not None  # noqa: S101 - only active accounts get mail
    settings = runtime.settings
    ttl = (
        timedelta(hours=settings.email_verification_ttl_hours)
        if purpose is MailTokenPurpose.VERIFY_EMAIL
        else timedelta(minutes=settings.password_reset_ttl_minutes)
    )
    await repository.expire_mail_tokens(session, account.id, purpose, now)
    token = secrets.token_urlsafe(32)
    await repository.add(
        session,
        MailToken(
            account_id=account.id,
            purpose=purpose,
            token_hash=keyed_hash(runtime.hash_key, token),
            email=account.email,
            created_at=now,
            expires_at=now + ttl,
        ),
    )
    return token


async def send_verification_mail(
    session: AsyncSession, runtime: IdentityRuntime, account: Account, now: datetime
) -> None:
    assert account.email is not None  # noqa: S101
    token = await issue_mail_token(session, runtime, account, MailTokenPurpose.VERIFY_EMAIL, now)
    mail = messages.verify_email(
        account.email,
        name=account.contact_person or account.name,
        link=runtime.settings.public_url("/verify-email", token=token),
        hours=runtime.settings.email_verification_ttl_hours,
    )
    await outbox.enqueue(session, mail, now=now, account_id=account.id)


async def resend_verification(session: AsyncSession, ctx: Context, account_id: uuid.UUID) -> None:
    account = await accounts.get_active(session, account_id)
    if account is None or account.email_verified_at is not None:
        return
    wait = await ctx.limiter.hit(
        ctx.runtime.settings.mail_requests_per_address, "verify-mail", str(account.id)
    )
    if wait:
        raise TooManyRequests(wait, "a confirmation mail was sent recently; check your inbox")
    await send_verification_mail(session, ctx.runtime, account, ctx.now)


async def _guard_link_attempts(ctx: Context) -> None:
    """Mailed links carry 256 random bits; an address that keeps presenting wrong ones is still
    slowed down as failed logins are (OWASP API6), so no flood of guesses reaches the table."""
    wait = await ctx.limiter.is_limited(
        ctx.runtime.settings.login_failures_per_ip, "link-ip", ctx.origin.ip or "unknown"
    )
    if wait:
        raise TooManyRequests(wait, "too many invalid links from this address; try again later")


async def _invalid_token(ctx: Context) -> ValidationFailed:
    await ctx.limiter.hit(
        ctx.runtime.settings.login_failures_per_ip, "link-ip", ctx.origin.ip or "unknown"
    )
    return ValidationFailed.for_field("token", "the link is invalid, used or expired")


async def verify_email(session: AsyncSession, ctx: Context, *, token: str) -> None:
    await _guard_link_attempts(ctx)
    used = await repository.consume_mail_token(
        session, keyed_hash(ctx.runtime.hash_key, token), MailTokenPurpose.VERIFY_EMAIL, ctx.now
    )
    if used is None:
        raise await _invalid_token(ctx)
    account = await accounts.get_active(session, used.account_id)
    # The link proves the address it was sent to, not one the account changed to since.
    if account is None or (account.email or "").lower() != used.email.lower():
        raise await _invalid_token(ctx)
    account.email_verified_at = ctx.now
    await record(
        session, account.id, SecurityEventType.EMAIL_VERIFIED, origin=ctx.origin, now=ctx.now
    )


async def request_password_reset(session: AsyncSession, ctx: Context, *, email: str) -> None:
    """Mail a reset link when the address is an account's confirmed one; the answer never
    tells whether. An unconfirmed address gets nothing: anyone holding a login can set one,
    and a reset link would hand them the account."""
    settings = ctx.runtime.settings
    wait = await ctx.limiter.hit(settings.login_failures_per_ip, "reset-ip", ctx.origin.ip or "-")
    if wait:
        raise TooManyRequests(wait, "too many password-reset requests; try again later")
    account = await accounts.by_email(session, email)
    if (
        account is None
        or not account.is_active
        or account.email is None
        or account.email_verified_at is None
    ):
        return
    address_key = hashlib.sha256(account.email.lower().encode()).hexdigest()
    if await ctx.limiter.hit(settings.mail_requests_per_address, "reset-mail", address_key):
        return  # Enough links sent to this mailbox for now; saying so would be an oracle.
    token = await issue_mail_token(
        session, ctx.runtime, account, MailTokenPurpose.RESET_PASSWORD, ctx.now
    )
    mail = messages.reset_password(
        account.email,
        name=account.contact_person or account.name,
        link=settings.public_url("/reset-password", token=token),
        minutes=settings.password_reset_ttl_minutes,
    )
    await outbox.enqueue(session, mail, now=ctx.now, account_id=account.id)
    await record(
        session,
        account.id,
        SecurityEventType.PASSWORD_RESET_REQUESTED,
        origin=ctx.origin,
        now=ctx.now,
    )


def check_password(password: str, *, field: str, context: tuple[str | None, ...]) -> None:
    problem = password_problem(password, context=tuple(c for c in context if c))
    if problem is not None:
        raise ValidationFailed.for_field(field, problem)


async def set_password(
    session: AsyncSession, ctx: Context, account: Account, password: str
) -> None:
    """Store a new password, sign out every login and tell the account holder by mail."""
    account.password_hash = await ctx.runtime.passwords.hash(password)
    await repository.revoke_all_for_account(session, account.id, ctx.now)
    if account.email:
        mail = messages.password_changed(account.email, name=account.contact_person or account.name)
        await outbox.enqueue(session, mail, now=ctx.now, account_id=account.id)


async def reset_password(
    session: AsyncSession, ctx: Context, *, token: str, new_password: str
) -> None:
    await _guard_link_attempts(ctx)
    token_hash = keyed_hash(ctx.runtime.hash_key, token)
    used = await repository.consume_mail_token(
        session, token_hash, MailTokenPurpose.RESET_PASSWORD, ctx.now
    )
    account = await accounts.get_active(session, used.account_id) if used else None
    # The link was mailed to one address; after a change of address it no longer counts.
    if used is None or account is None or (account.email or "").lower() != used.email.lower():
        raise await _invalid_token(ctx)
    check_password(new_password, field="new_password", context=(account.email, account.name))
    await set_password(session, ctx, account, new_password)
    await record(
        session, account.id, SecurityEventType.PASSWORD_RESET, origin=ctx.origin, now=ctx.now
    )
