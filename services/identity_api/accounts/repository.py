"""Queries on ``accounts`` and the debtor-number counter."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.pagination import PageParams, paginate_by_id
from services.identity_api.models import Account, DebtorNumberCounter


class DuplicateEmail(Exception):
    pass


async def get(session: AsyncSession, account_id: uuid.UUID) -> Account | None:
    return await session.get(Account, account_id)


async def get_active(session: AsyncSession, account_id: uuid.UUID) -> Account | None:
    account = await session.get(Account, account_id)
    return account if account is not None and account.erased_at is None else None


async def by_email(session: AsyncSession, email: str) -> Account | None:
    statement = select(Account).where(func.lower(Account.email) == func.lower(email))
    return (await session.scalars(statement)).first()


async def email_taken(
    session: AsyncSession, email: str, *, except_id: uuid.UUID | None = None
) -> bool:
    statement = select(Account.id).where(func.lower(Account.email) == func.lower(email))
    if except_id is not None:
        statement = statement.where(Account.id != except_id)
    return (await session.scalar(statement.limit(1))) is not None


async def find(
    session: AsyncSession,
    params: PageParams,
    *,
    email: str | None = None,
    debtor_number: str | None = None,
) -> tuple[Sequence[Account], str | None]:
    statement = select(Account)
    if email is not None:
        statement = statement.where(func.lower(Account.email) == func.lower(email))
    if debtor_number is not None:
        statement = statement.where(Account.debtor_number == debtor_number)
    return await paginate_by_id(session, statement, Account.id, params)


async def next_debtor_number(session: AsyncSession) -> str:
    """Take the next number; the counter row stays locked until the transaction ends."""
    value = await session.scalar(
        update(DebtorNumberCounter)
        .where(DebtorNumberCounter.id == 1)
        .values(last_value=DebtorNumberCounter.last_value + 1)
        .returning(DebtorNumberCounter.last_value)
    )
    if value is None:
        raise RuntimeError("the debtor-number counter row is missing (run the migrations)")
    return str(value)


async def add(session: AsyncSession, account: Account) -> None:
    """Insert; a concurrent registration with the same e-mail raises :class:`DuplicateEmail`."""
    try:
        async with session.begin_nested():
            session.add(account)
            await session.flush()
    except IntegrityError as exc:
        raise DuplicateEmail from exc


async def flush_email_change(session: AsyncSession) -> None:
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError as exc:
        raise DuplicateEmail from exc
