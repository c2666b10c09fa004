"""Set-based queries over every table that holds a subject's data."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Table, delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.db import stream_batches
from libs.common.idempotency import IdempotencyKeyMixin
from libs.common.pii import TableErasure, table_erasure
from services.identity_api.models import (
    Account,
    AccountNoticeRecord,
    ApiKey,
    IdempotencyKey,
    MailToken,
    OutboxMail,
    RefreshToken,
    RequestLog,
    SecurityEvent,
    StaffAccessLog,
    SubjectRequestResult,
)


@dataclass(frozen=True, slots=True)
class SubjectTable:
    model: Any
    category: str
    """The export category (privacy_api writes one JSON and CSV file per category)."""

    @property
    def table(self) -> Table:
        table: Table = self.model.__table__
        return table

    @property
    def on_erase(self) -> TableErasure:
        """Declared on the table: its rows are deleted, or their personal columns erased."""
        return table_erasure(self.table)

    @property
    def link(self) -> Any:
        """The column naming the account the row belongs to."""
        if self.model is Account:
            return self.model.id
        if issubclass(self.model, IdempotencyKeyMixin):
            return self.model.scope
        return self.model.account_id

    def of_accounts(self, ids: Sequence[uuid.UUID]) -> ColumnElement[bool]:
        """The rows of these accounts (a stored answer's ``scope`` is the account id as text)."""
        values = [str(i) for i in ids] if issubclass(self.model, IdempotencyKeyMixin) else ids
        condition: ColumnElement[bool] = self.link.in_(values)
        return condition


SUBJECT_TABLES: tuple[SubjectTable, ...] = (
    SubjectTable(Account, "account"),
    SubjectTable(ApiKey, "api_keys"),
    SubjectTable(RefreshToken, "sessions"),
    SubjectTable(SecurityEvent, "security_events"),
    SubjectTable(RequestLog, "request_log"),
    SubjectTable(MailToken, "mail_tokens"),
    SubjectTable(OutboxMail, "mail_outbox"),
    SubjectTable(StaffAccessLog, "staff_access"),
    SubjectTable(IdempotencyKey, "idempotency_keys"),
    SubjectTable(AccountNoticeRecord, "account_notices"),
)
"""Every table with an account holder's personal data. ``tests/identity/test_subjects.py``
checks that no PII-annotated table is missing."""

EMPLOYEE_TABLES = frozenset({"staff_users"})
"""Staff members' own data: employee records (privacy statement: 'Als u werkt bij Parcel
Pro'), handled by HR, not by account holders' requests."""


async def matching_account_ids(
    session: AsyncSession, *, account_id: uuid.UUID | None, email: str | None
) -> list[uuid.UUID]:
    """The accounts a subject proved to be theirs: by id, or by an e-mail address that the
    account holder confirmed too. An unconfirmed address, or the phone number, of an account
    was typed by whoever made it and proves nothing (decision 0109)."""
    conditions = []
    if account_id is not None:
        conditions.append(Account.id == account_id)
    if email is not None:
        conditions.append(
            (func.lower(Account.email) == func.lower(email))
            & Account.email_verified_at.is_not(None)
        )
    if not conditions:
        return []
    return list((await session.scalars(select(Account.id).where(or_(*conditions)))).all())


async def stream_rows(
    session: AsyncSession, entry: SubjectTable, ids: Sequence[uuid.UUID], batch: int = 2000
) -> AsyncIterator[Sequence[Any]]:
    """The subject's rows of one table in id order, ``batch`` at a time (``stream_batches``)."""
    statement = select(entry.table).where(entry.of_accounts(ids)).order_by(entry.model.id)
    async for rows in stream_batches(await session.connection(), statement, batch):
        yield rows


async def delete_rows(session: AsyncSession, entry: SubjectTable, ids: Sequence[uuid.UUID]) -> int:
    result = await session.execute(
        delete(entry.model)
        .where(entry.of_accounts(ids))
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def update_rows(
    session: AsyncSession, entry: SubjectTable, ids: Sequence[uuid.UUID], values: dict[str, Any]
) -> int:
    result = await session.execute(
        update(entry.model)
        .where(entry.of_accounts(ids))
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def stored_result(
    session: AsyncSession, request_id: str, operation: str
) -> dict[str, Any] | None:
    statement = select(SubjectRequestResult.response).where(
        SubjectRequestResult.request_id == request_id,
        SubjectRequestResult.operation == operation,
    )
    response: dict[str, Any] | None = await session.scalar(statement)
    return response


async def store_result(
    session: AsyncSession, request_id: str, operation: str, response: dict[str, Any]
) -> bool:
    """False when a concurrent call with the same request id stored its answer first."""
    try:
        async with session.begin_nested():
            session.add(
                SubjectRequestResult(request_id=request_id, operation=operation, response=response)
            )
            await session.flush()
    except IntegrityError:
        return False
    return True


STAFF_SEARCHES = SubjectTable(StaffAccessLog, "staff_access")
"""Staff searches for the subject's address that found no account (decision 0108)."""


def _searches(search: str) -> ColumnElement[bool]:
    """Staff searches for an address that found no account (``query`` as ``email_search``
    wrote it, alone or before the debtor number). A search that found an account is that
    account's entry and goes with it."""
    return StaffAccessLog.account_id.is_(None) & or_(
        StaffAccessLog.query == search, StaffAccessLog.query.startswith(f"{search} ")
    )


async def stream_searches(
    session: AsyncSession, search: str, batch: int = 2000
) -> AsyncIterator[Sequence[Any]]:
    statement = (
        select(StaffAccessLog.__table__).where(_searches(search)).order_by(StaffAccessLog.id)
    )
    async for rows in stream_batches(await session.connection(), statement, batch):
        yield rows


async def erase_searches(session: AsyncSession, search: str, values: dict[str, Any]) -> int:
    result = await session.execute(
        update(StaffAccessLog)
        .where(_searches(search))
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)
