"""SQL over privacy's own tables for one data subject: matched by account id or blind index,
read in keyset batches, erased set-based from the PII annotations."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import ColumnElement, Table, delete, false, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.pii import erasure_values, export_row
from services.privacy_api.models import (
    Base,
    Consent,
    ConsentEvent,
    IdempotencyKey,
    MailOutbox,
    Objection,
    PrivacyRequest,
    RequestLog,
    RequestSource,
    SubjectCall,
    SubjectRestriction,
    account_scope,
)

BATCH_SIZE = 1000


def _table(model: type[Base]) -> Table:
    return cast(Table, model.__table__)


@dataclass(frozen=True, slots=True)
class SubjectKeys:
    """A subject as privacy's tables know it."""

    account_id: uuid.UUID | None
    email_index: str | None
    phone_index: str | None = None


def _match(table: Table, keys: SubjectKeys) -> ColumnElement[bool]:
    if table is _table(MailOutbox):
        return _mails_match(keys)
    if table is _table(IdempotencyKey):
        return _stored_answers_match(keys)
    conditions: list[ColumnElement[bool]] = []
    if keys.account_id is not None and "account_id" in table.c:
        conditions.append(table.c.account_id == keys.account_id)
    if keys.email_index is not None and "email_index" in table.c:
        conditions.append(table.c.email_index == keys.email_index)
    if keys.phone_index is not None and "phone_index" in table.c:
        conditions.append(table.c.phone_index == keys.phone_index)
    if not conditions:
        return false()
    condition = or_(*conditions)
    if table is _table(PrivacyRequest):
        # A disclosure's export is the officer's record, not a request of the subject.
        condition = condition & (table.c.source != RequestSource.DISCLOSURE.value)
    return condition


def _stored_answers_match(keys: SubjectKeys) -> ColumnElement[bool]:
    """Stored answers to creates (decision 0202): the account's own, and any answer naming
    one of the subject's requests (an officer's letter entry holds its e-mail and phone)."""
    table = _table(IdempotencyKey)
    requests = _table(PrivacyRequest)
    conditions: list[ColumnElement[bool]] = [
        table.c.resource_id.in_(select(requests.c.id).where(_match(requests, keys)))
    ]
    if keys.account_id is not None:
        conditions.append(table.c.scope == account_scope(keys.account_id))
    return or_(*conditions)


def _mails_match(keys: SubjectKeys) -> ColumnElement[bool]:
    """Mail about the subject's own requests (the correspondence with them); a disclosure's
    notice to the officer is not theirs (``_match`` leaves disclosures out)."""
    requests = _table(PrivacyRequest)
    return _table(MailOutbox).c.privacy_request_id.in_(
        select(requests.c.id).where(_match(requests, keys))
    )


# (table, category) of every table a subject export reads, in the order of the export.
EXPORTED: tuple[tuple[Table, str], ...] = (
    (_table(PrivacyRequest), "privacy_request"),
    (_table(MailOutbox), "privacy_request"),
    (_table(Objection), "privacy_request"),
    (_table(SubjectRestriction), "privacy_request"),
    (_table(Consent), "consent"),
    (_table(ConsentEvent), "consent"),
    (_table(RequestLog), "usage"),
    (_table(IdempotencyKey), "privacy_request"),
)


async def stream_records(
    session: AsyncSession, keys: SubjectKeys
) -> AsyncIterator[tuple[str, str, dict[str, Any]]]:
    """(category, table, record) of every row of the subject, in keyset batches."""
    for table, category in EXPORTED:
        after: uuid.UUID | None = None
        while True:
            statement = select(table).where(_match(table, keys))
            if after is not None:
                statement = statement.where(table.c.id > after)
            rows = (await session.execute(statement.order_by(table.c.id).limit(BATCH_SIZE))).all()
            for row in rows:
                yield category, table.name, export_row(table, row)
            if len(rows) < BATCH_SIZE:
                break
            after = rows[-1].id


# Tables whose rows are anonymised in place from their annotations; the others are deleted
# (their whole meaning is the subject: current consents, request-log entries).
ANONYMISED: tuple[Table, ...] = (
    _table(PrivacyRequest),
    _table(ConsentEvent),
    _table(Objection),
)
DELETED: tuple[Table, ...] = (_table(Consent), _table(RequestLog), _table(IdempotencyKey))
RETAINING: tuple[Table, ...] = (
    _table(PrivacyRequest),
    _table(MailOutbox),
    _table(Objection),
    _table(SubjectRestriction),
)


async def erase(session: AsyncSession, keys: SubjectKeys) -> dict[str, int]:
    erased: dict[str, int] = {}
    for table in DELETED:
        result = await session.execute(delete(table).where(_match(table, keys)))
        erased[table.name] = int(getattr(result, "rowcount", 0) or 0)
    for table in ANONYMISED:
        values = erasure_values(table)
        result = await session.execute(update(table).where(_match(table, keys)).values(values))
        erased[table.name] = int(getattr(result, "rowcount", 0) or 0)
    return erased


async def set_restriction(
    session: AsyncSession,
    keys: SubjectKeys,
    *,
    basis: str,
    restricted: bool,
    request_id: uuid.UUID,
    now: datetime,
) -> int:
    """One flag per identifier and basis; returns the flags written."""
    written = 0
    for column, value in (("account_id", keys.account_id), ("email_index", keys.email_index)):
        if value is None:
            continue
        existing = await session.scalar(
            select(SubjectRestriction).where(
                getattr(SubjectRestriction, column) == value, SubjectRestriction.basis == basis
            )
        )
        if existing is None:
            if not restricted:
                continue
            session.add(
                SubjectRestriction(
                    basis=basis,
                    restricted=True,
                    privacy_request_id=request_id,
                    changed_at=now,
                    **{column: value},
                )
            )
        else:
            existing.restricted = restricted
            existing.privacy_request_id = request_id
            existing.changed_at = now
        written += 1
    await session.flush()
    return written


async def is_restricted(session: AsyncSession, keys: SubjectKeys) -> tuple[bool, bool]:
    """(restricted on any basis, objected) for the subject."""
    table = _table(SubjectRestriction)
    rows = (
        await session.execute(
            select(table.c.basis).where(_match(table, keys), table.c.restricted.is_(True))
        )
    ).all()
    bases = {row.basis for row in rows}
    objected = await session.scalar(
        select(Objection.id).where(_match(_table(Objection), keys)).limit(1)
    )
    return bool(bases), objected is not None or "objection" in bases


async def stored_answer(
    session: AsyncSession, request_id: uuid.UUID, action: str
) -> dict[str, Any] | None:
    return await session.scalar(
        select(SubjectCall.result).where(
            SubjectCall.request_id == request_id, SubjectCall.action == action
        )
    )


async def store_answer(
    session: AsyncSession,
    request_id: uuid.UUID,
    action: str,
    result: dict[str, Any],
    now: datetime,
) -> None:
    session.add(SubjectCall(request_id=request_id, action=action, result=result, created_at=now))
    await session.flush()
