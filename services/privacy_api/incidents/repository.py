"""Breach-register SQL."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import ColumnElement, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.pagination import PageParams, paginate_by_id
from services.privacy_api.models import Incident, IncidentRisk


def overdue_condition(now: datetime) -> ColumnElement[bool]:
    return (
        Incident.ap_notified_at.is_(None)
        & (Incident.risk != IncidentRisk.UNLIKELY.value)
        & (Incident.ap_deadline < now)
    )


async def add(session: AsyncSession, incident: Incident) -> None:
    session.add(incident)
    await session.flush()


async def get(session: AsyncSession, incident_id: uuid.UUID) -> Incident | None:
    return await session.get(Incident, incident_id)


async def page(
    session: AsyncSession, params: PageParams, *, overdue_at: datetime | None
) -> tuple[Sequence[Incident], str | None]:
    statement = select(Incident)
    if overdue_at is not None:
        statement = statement.where(overdue_condition(overdue_at))
    return await paginate_by_id(session, statement, Incident.id, params)


async def flag_overdue(session: AsyncSession, now: datetime) -> list[uuid.UUID]:
    ids = list(
        (
            await session.scalars(
                select(Incident.id).where(
                    overdue_condition(now), Incident.overdue_flagged_at.is_(None)
                )
            )
        ).all()
    )
    if ids:
        await session.execute(
            update(Incident).where(Incident.id.in_(ids)).values(overdue_flagged_at=now)
        )
    return ids


async def overdue(session: AsyncSession, now: datetime) -> list[Incident]:
    statement = select(Incident).where(overdue_condition(now)).order_by(Incident.ap_deadline)
    return list((await session.scalars(statement)).all())
