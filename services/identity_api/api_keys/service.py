"""Creating, listing, revoking and checking API keys.

A key is ``pp_<mode>_<prefix>_<secret>``: the prefix finds the row, the secret (~238 bits)
is checked against an HMAC-SHA256 of the whole key. A fast keyed hash is right here: unlike a
password the secret cannot be guessed, and every API call needs the check.
"""

from __future__ import annotations

import hmac
import re
import secrets
import string
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.auth import Principal, PrincipalKind
from libs.common.crypto import keyed_hash
from libs.common.errors import Conflict, FieldError, NotFound
from libs.common.idempotency import HEADER as IDEMPOTENCY_HEADER
from libs.common.pagination import PageParams
from services.identity_api.api_keys import repository
from services.identity_api.api_keys.schemas import ApiKeyCreate, Introspection
from services.identity_api.auth.service import Context
from services.identity_api.models import ApiKey, ApiKeyMode, SecurityEventType
from services.identity_api.security_events.service import record

MAX_ACTIVE_KEYS = 25
_ALPHABET = string.ascii_letters + string.digits
_KEY = re.compile(r"^pp_(live|test)_([a-z0-9]{12})_([A-Za-z0-9]{40})$")
LAST_USED_GRANULARITY = timedelta(minutes=1)


class ReplayUnavailable(Conflict):
    """A retry under the ``Idempotency-Key`` of a create whose answer showed the key's secret:
    stored only as a keyed hash, it is never shown again (decisions 0107, 0202)."""

    slug = "replay-unavailable"
    title = "The first answer under this Idempotency-Key can no longer be given"

    def __init__(self, location: str) -> None:
        super().__init__(
            f"This Idempotency-Key already created the API key {location}. Its secret was shown "
            "only in that first answer and is not stored, so it cannot be shown again: if that "
            f"answer was lost, revoke the key (DELETE {location}) and create a new one with a "
            "new Idempotency-Key.",
            errors=[
                FieldError(
                    field=IDEMPOTENCY_HEADER,
                    location="header",
                    message="already created an API key, whose secret is shown only once",
                    type="replay_unavailable",
                )
            ],
            headers={"Location": location},
        )


def _new_key(mode: ApiKeyMode) -> tuple[str, str]:
    prefix = secrets.token_hex(6)
    secret = "".join(secrets.choice(_ALPHABET) for _ in range(40))
    return prefix, f"pp_{mode.value}_{prefix}_{secret}"


async def create(
    session: AsyncSession, ctx: Context, account_id: uuid.UUID, data: ApiKeyCreate
) -> tuple[ApiKey, str]:
    if await repository.count_active(session, account_id) >= MAX_ACTIVE_KEYS:
        raise Conflict(f"an account has at most {MAX_ACTIVE_KEYS} active API keys; revoke one")
    prefix, key = _new_key(data.mode)
    row = ApiKey(
        account_id=account_id,
        name=data.name,
        prefix=prefix,
        secret_hash=keyed_hash(ctx.runtime.hash_key, key),
        mode=data.mode,
        scopes=[scope.value for scope in data.scopes],
        created_at=ctx.now,
    )
    await repository.add(session, row)
    await record(
        session,
        account_id,
        SecurityEventType.API_KEY_CREATED,
        origin=ctx.origin,
        now=ctx.now,
        key_id=str(row.id),
        name=row.name,
        prefix=prefix,
        mode=row.mode,
        scopes=row.scopes,
    )
    return row, key


async def list_for_account(
    session: AsyncSession, account_id: uuid.UUID, params: PageParams
) -> tuple[Sequence[ApiKey], str | None]:
    return await repository.page_for_account(session, account_id, params)


async def get(session: AsyncSession, account_id: uuid.UUID, key_id: uuid.UUID) -> ApiKey:
    """The account's key; another account's key is not found (no existence oracle)."""
    row = await repository.get_for_account(session, account_id, key_id)
    if row is None:
        raise NotFound("no API key with this id")
    return row


async def revoke(
    session: AsyncSession, ctx: Context, account_id: uuid.UUID, key_id: uuid.UUID
) -> None:
    row = await get(session, account_id, key_id)
    if row.revoked_at is not None:
        return
    row.revoked_at = ctx.now
    await record(
        session,
        account_id,
        SecurityEventType.API_KEY_REVOKED,
        origin=ctx.origin,
        now=ctx.now,
        key_id=str(row.id),
        name=row.name,
        prefix=row.prefix,
    )
    # This process forgets its cached answers at once; others within 30 s (decision 0003).
    ctx.runtime.api_key_cache.clear()


async def check(
    session: AsyncSession, hash_key: bytes, api_key: str, now: datetime
) -> ApiKey | None:
    match = _KEY.fullmatch(api_key)
    if match is None:
        return None
    mode, prefix, _secret = match.groups()
    row = await repository.usable_by_prefix(session, prefix)
    if row is None or row.secret_hash is None or row.mode != mode:
        return None
    if not hmac.compare_digest(row.secret_hash, keyed_hash(hash_key, api_key)):
        return None
    await repository.touch(session, row.id, now, now - LAST_USED_GRANULARITY)
    return row


def introspection(row: ApiKey | None) -> Introspection:
    if row is None:
        return Introspection(active=False)
    return Introspection(
        active=True,
        key_id=row.id,
        account_id=row.account_id,
        scopes=list(row.scopes),
        mode=ApiKeyMode(row.mode),
    )


def principal(row: ApiKey) -> Principal:
    return Principal(
        kind=PrincipalKind.API_KEY,
        subject=str(row.id),
        account_id=row.account_id,
        scopes=frozenset(str(scope) for scope in row.scopes),
        mode="test" if row.mode == ApiKeyMode.TEST else "live",
        key_id=row.id,
    )
