"""Privacy-request SQL."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import ColumnElement, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.pagination import PageParams, paginate_by_id
from services.privacy_api.models import (
    PrivacyRequest,
    PrivacyTask,
    RequestSource,
    RequestStatus,
)

WORKING = (RequestStatus.VERIFIED.value, RequestStatus.IN_PROGRESS.value)


async def add(session: AsyncSession, request: PrivacyRequest) -> None:
    session.add(request)
    await session.flush()


async def get(session: AsyncSession, request_id: uuid.UUID) -> PrivacyRequest | None:
    return await session.get(PrivacyRequest, request_id)


async def get_for_update(session: AsyncSession, request_id: uuid.UUID) -> PrivacyRequest | None:
    statement = select(PrivacyRequest).where(PrivacyRequest.id == request_id)
    if session.get_bind().dialect.name == "postgresql":
        statement = statement.with_for_update()
    return await session.scalar(statement.execution_options(populate_existing=True))


def overdue_condition(now: datetime) -> ColumnElement[bool]:
    return PrivacyRequest.status.in_(WORKING) & (PrivacyRequest.due_at < now)


async def page(
    session: AsyncSession,
    params: PageParams,
    *,
    account_id: uuid.UUID | None = None,
    status: str | None = None,
    type_: str | None = None,
    overdue_at: datetime | None = None,
) -> tuple[Sequence[PrivacyRequest], str | None]:
    statement = select(PrivacyRequest)
    if account_id is not None:
        statement = statement.where(
            PrivacyRequest.account_id == account_id,
            PrivacyRequest.source != RequestSource.DISCLOSURE.value,
        )
    if status is not None:
        statement = statement.where(PrivacyRequest.status == status)
    if type_ is not None:
        statement = statement.where(PrivacyRequest.type == type_)
    if overdue_at is not None:
        statement = statement.where(overdue_condition(overdue_at))
    return await paginate_by_id(session, statement, PrivacyRequest.id, params)


async def tasks_of(
    session: AsyncSession, request_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[PrivacyTask]]:
    out: dict[uuid.UUID, list[PrivacyTask]] = {rid: [] for rid in request_ids}
    if not request_ids:
        return out
    rows = await session.scalars(
        select(PrivacyTask)
        .where(PrivacyTask.request_id.in_(request_ids))
        .order_by(PrivacyTask.service, PrivacyTask.action)
    )
    for task in rows:
        out[task.request_id].append(task)
    return out


async def add_tasks(session: AsyncSession, tasks: Sequence[PrivacyTask]) -> None:
    session.add_all(tasks)
    await session.flush()


async def flag_overdue(session: AsyncSession, now: datetime) -> list[PrivacyRequest]:
    """Mark requests past their deadline that were not flagged yet; returns them."""
    rows = list(
        (
            await session.scalars(
                select(PrivacyRequest).where(
                    overdue_condition(now), PrivacyRequest.overdue_flagged_at.is_(None)
                )
            )
        ).all()
    )
    if rows:
        await session.execute(
            update(PrivacyRequest)
            .where(PrivacyRequest.id.in_([r.id for r in rows]))
            .values(overdue_flagged_at=now)
        )
    return rows


async def overdue(session: AsyncSession, now: datetime) -> list[PrivacyRequest]:
    statement = select(PrivacyRequest).where(overdue_condition(now)).order_by(PrivacyRequest.due_at)
    return list((await session.scalars(statement)).all())


async def expired_exports(session: AsyncSession, now: datetime) -> list[PrivacyRequest]:
    statement = select(PrivacyRequest).where(
        PrivacyRequest.export_file.is_not(None), PrivacyRequest.export_expires_at < now
    )
    return list((await session.scalars(statement)).all())


async def reject_unverified(session: AsyncSession, now: datetime, reason: str) -> int:
    """Requests whose code expired without verification are closed (never answered)."""
    result = await session.execute(
        update(PrivacyRequest)
        .where(
            PrivacyRequest.status == RequestStatus.PENDING_VERIFICATION.value,
            PrivacyRequest.code_expires_at < now,
        )
        .values(
            status=RequestStatus.REJECTED.value,
            rejected_at=now,
            rejection_reason=reason,
            code_hash=None,
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def anonymise_closed_before(session: AsyncSession, cutoff: datetime, now: datetime) -> int:
    """After the proof-of-handling period, a closed request keeps no contact details.
    (``completed_at`` is also set when a request ends as failed.)"""
    closed = (
        RequestStatus.COMPLETED.value,
        RequestStatus.REJECTED.value,
        RequestStatus.FAILED.value,
    )
    result = await session.execute(
        update(PrivacyRequest)
        .where(
            PrivacyRequest.status.in_(closed),
            PrivacyRequest.anonymised_at.is_(None),
            or_(PrivacyRequest.completed_at < cutoff, PrivacyRequest.rejected_at < cutoff),
        )
        .values(
            account_id=None,
            email=None,
            email_index=None,
            phone=None,
            phone_index=None,
            message=None,
            changes=None,
            verification_note=None,
            access_token_hash=None,
            anonymised_at=now,
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)
