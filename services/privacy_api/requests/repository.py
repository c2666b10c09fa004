"""Privacy-request SQL."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import cast

from sqlalchemy import ColumnElement, Table, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.pagination import PageParams, paginate_by_id
from libs.common.pii import Erasure, pii_columns
from services.privacy_api.models import (
    Objection,
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


def _expiring_values(table: Table) -> dict[str, None]:
    """NULL for every personal column of a request's rows that ends with the request's retention:
    all but those another obligation keeps without a term of its own (a staff record, the
    objection that must keep being honoured). Read from the ``pii(...)`` annotations, so a new
    column cannot outlive the retention period unnoticed."""
    values: dict[str, None] = {}
    for column, spec in pii_columns(table):
        if spec.erasure is Erasure.RETAIN and spec.retain_years is None:
            continue
        if not column.nullable:
            raise TypeError(f"{table.name}.{column.key}: a column that expires must be nullable")
        values[column.key] = None
    return values


def _holds_any(table: Table, values: dict[str, None]) -> ColumnElement[bool]:
    return or_(*(table.c[key].is_not(None) for key in values))


_REQUESTS = cast(Table, PrivacyRequest.__table__)
# Rows that belong to one request and end with it, with the column naming the request.
_REQUEST_ROWS: tuple[tuple[Table, str], ...] = (
    (cast(Table, Objection.__table__), "privacy_request_id"),
    (cast(Table, PrivacyTask.__table__), "request_id"),
)
_CLOSED = (
    RequestStatus.COMPLETED.value,
    RequestStatus.REJECTED.value,
    RequestStatus.FAILED.value,
)


async def anonymise_closed_before(session: AsyncSession, cutoff: datetime, now: datetime) -> int:
    """After the proof-of-handling period (the register: two years after closing), a closed
    request and the rows that belong to it (the objection's grounds, the services' answers) keep
    no personal data of the requester; returns the requests anonymised. (``completed_at`` is
    also set when a request ends as failed.)"""
    closed_before = (
        _REQUESTS.c.status.in_(_CLOSED),
        or_(_REQUESTS.c.completed_at < cutoff, _REQUESTS.c.rejected_at < cutoff),
    )
    for table, request_column in _REQUEST_ROWS:
        values = _expiring_values(table)
        await session.execute(
            update(table)
            .where(
                table.c[request_column].in_(select(_REQUESTS.c.id).where(*closed_before)),
                _holds_any(table, values),
            )
            .values(values)
        )
    values = _expiring_values(_REQUESTS)
    result = await session.execute(
        update(_REQUESTS)
        .where(
            *closed_before,
            or_(_REQUESTS.c.anonymised_at.is_(None), _holds_any(_REQUESTS, values)),
        )
        .values(values | {"anonymised_at": now})
    )
    return int(getattr(result, "rowcount", 0) or 0)
