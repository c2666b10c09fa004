"""Debtor numbers stay unique and gap-free when registrations run at the same time."""

from __future__ import annotations

import asyncio

from sqlalchemy import update

from libs.common.cli import database_for
from services.identity_api.accounts.repository import next_debtor_number
from services.identity_api.models import DebtorNumberCounter
from services.identity_api.settings import IdentitySettings


async def test_concurrent_transactions_get_distinct_consecutive_numbers(
    identity_settings: IdentitySettings,
) -> None:
    # Real, committed transactions on separate connections (not the rolled-back test
    # transaction): this is about what the database does when two of them race.
    database = database_for(identity_settings)
    taken: list[int] = []

    async def take(rollback: bool) -> None:
        async with database.sessionmaker() as session:
            number = int(await next_debtor_number(session))
            await asyncio.sleep(0.01)  # hold the row a moment, as a registration does
            if rollback:
                await session.rollback()
            else:
                taken.append(number)
                await session.commit()

    try:
        async with database.sessionmaker() as session:
            start = int(await next_debtor_number(session))
            await session.rollback()
        await asyncio.gather(*(take(rollback=i % 3 == 0) for i in range(9)))
        assert sorted(taken) == list(range(start, start + 6))
    finally:
        async with database.sessionmaker() as session:
            await session.execute(
                update(DebtorNumberCounter)
                .where(DebtorNumberCounter.id == 1)
                .values(last_value=start - 1)
            )
            await session.commit()
        await database.dispose()
