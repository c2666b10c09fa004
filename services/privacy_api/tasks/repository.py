"""Task SQL: claiming under a lease (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, a conditional
UPDATE on SQLite, whose writers are serialised anyway), and recording outcomes only while the
lease is still ours."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, exists, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.privacy_api.models import PrivacyRequest, PrivacyTask, RequestStatus, TaskStatus

OPEN_TASK = (TaskStatus.PENDING.value, TaskStatus.RUNNING.value)


def _claimable(now: datetime) -> Any:
    return or_(
        and_(PrivacyTask.status == TaskStatus.PENDING.value, PrivacyTask.next_attempt_at <= now),
        # A running task whose lease expired belongs to a worker that died: take it over.
        and_(PrivacyTask.status == TaskStatus.RUNNING.value, PrivacyTask.lease_expires_at < now),
    )


async def claim_next(
    session: AsyncSession, *, owner: str, now: datetime, lease: timedelta
) -> PrivacyTask | None:
    candidate = (
        select(PrivacyTask.id)
        .where(_claimable(now))
        .order_by(PrivacyTask.next_attempt_at, PrivacyTask.id)
        .limit(1)
    )
    if session.get_bind().dialect.name == "postgresql":
        candidate = candidate.with_for_update(skip_locked=True)
    task_id = await session.scalar(candidate)
    if task_id is None:
        return None
    result = await session.execute(
        update(PrivacyTask)
        .where(PrivacyTask.id == task_id, _claimable(now))
        .values(
            status=TaskStatus.RUNNING.value,
            lease_owner=owner,
            lease_expires_at=now + lease,
            attempts=PrivacyTask.attempts + 1,
            started_at=now,
        )
    )
    if not getattr(result, "rowcount", 0):
        return None
    task = await session.get(PrivacyTask, task_id, populate_existing=True)
    if task is None:  # pragma: no cover - deleted between the statements
        return None
    await session.execute(
        update(PrivacyRequest)
        .where(
            PrivacyRequest.id == task.request_id,
            PrivacyRequest.status == RequestStatus.VERIFIED.value,
        )
        .values(status=RequestStatus.IN_PROGRESS.value)
    )
    return task


async def finish(
    session: AsyncSession,
    task_id: uuid.UUID,
    owner: str,
    *,
    status: TaskStatus,
    now: datetime,
    result: dict[str, Any] | None = None,
    error: str | None = None,
) -> bool:
    """Record the outcome; ``False`` when the lease was lost (another worker took over)."""
    outcome = await session.execute(
        update(PrivacyTask)
        .where(PrivacyTask.id == task_id, PrivacyTask.lease_owner == owner)
        .values(
            status=status.value,
            result=result,
            last_error=error,
            finished_at=now,
            lease_owner=None,
            lease_expires_at=None,
        )
    )
    return bool(getattr(outcome, "rowcount", 0))


async def retry_later(
    session: AsyncSession, task_id: uuid.UUID, owner: str, *, at: datetime, error: str
) -> bool:
    outcome = await session.execute(
        update(PrivacyTask)
        .where(PrivacyTask.id == task_id, PrivacyTask.lease_owner == owner)
        .values(
            status=TaskStatus.PENDING.value,
            next_attempt_at=at,
            last_error=error,
            lease_owner=None,
            lease_expires_at=None,
        )
    )
    return bool(getattr(outcome, "rowcount", 0))


async def release_claims(
    session: AsyncSession, owner: str, *, keep: set[uuid.UUID], now: datetime
) -> int:
    """Hand back tasks leased to ``owner`` that it is not working on: claims whose commit went
    through while its answer was lost (a database restart), which would otherwise wait for
    their lease to run out."""
    statement = update(PrivacyTask).where(
        PrivacyTask.lease_owner == owner, PrivacyTask.status == TaskStatus.RUNNING.value
    )
    if keep:
        statement = statement.where(PrivacyTask.id.not_in(keep))
    outcome = await session.execute(
        statement.values(
            status=TaskStatus.PENDING.value,
            next_attempt_at=now,
            lease_owner=None,
            lease_expires_at=None,
        )
    )
    return int(getattr(outcome, "rowcount", 0) or 0)


async def requests_to_finish(
    session: AsyncSession, now: datetime, limit: int = 20
) -> list[uuid.UUID]:
    """Working requests whose every task has ended, not being finished by another worker."""
    task = PrivacyTask
    statement = (
        select(PrivacyRequest.id)
        .where(
            PrivacyRequest.status.in_(
                (RequestStatus.VERIFIED.value, RequestStatus.IN_PROGRESS.value)
            ),
            or_(
                PrivacyRequest.finalize_lease_until.is_(None),
                PrivacyRequest.finalize_lease_until < now,
            ),
            exists().where(task.request_id == PrivacyRequest.id),
            ~exists().where(task.request_id == PrivacyRequest.id, task.status.in_(OPEN_TASK)),
        )
        .limit(limit)
    )
    return list((await session.scalars(statement)).all())


async def claim_finishing(
    session: AsyncSession, request_id: uuid.UUID, *, now: datetime, lease: timedelta
) -> bool:
    outcome = await session.execute(
        update(PrivacyRequest)
        .where(
            PrivacyRequest.id == request_id,
            PrivacyRequest.status.in_(
                (RequestStatus.VERIFIED.value, RequestStatus.IN_PROGRESS.value)
            ),
            or_(
                PrivacyRequest.finalize_lease_until.is_(None),
                PrivacyRequest.finalize_lease_until < now,
            ),
        )
        .values(finalize_lease_until=now + lease)
    )
    return bool(getattr(outcome, "rowcount", 0))


async def tasks_of(session: AsyncSession, request_id: uuid.UUID) -> list[PrivacyTask]:
    rows = await session.scalars(
        select(PrivacyTask)
        .where(PrivacyTask.request_id == request_id)
        .order_by(PrivacyTask.service)
    )
    return list(rows.all())
