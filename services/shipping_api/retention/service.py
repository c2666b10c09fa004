"""Retention of recipients' personal data: at least three months (privacy statement) and no
longer than configured after a shipment's final status, or after the last status change of a
shipment abandoned before it reached one. Expired recipients are erased set-based in batches;
counts stay (postcode area, country, status, dates), names go."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, delete, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from libs.common.db import among
from libs.common.idempotency import purge_expired_keys
from libs.common.request_log import purge_expired_request_log
from libs.common.retention import purge_created_before
from services.shipping_api.models import (
    IdempotencyKey,
    RequestLog,
    Shipment,
    SupportAccess,
    WebhookDelivery,
    WebhookEndpoint,
)
from services.shipping_api.recipients.erasure import (
    SHIPMENTS,
    erase_dependents,
    erased_recipient_values,
)
from services.shipping_api.settings import ShippingSettings
from services.shipping_api.webhooks.outbox import DeliveryState


@dataclass
class PurgeReport:
    shipments: int = 0
    """Shipments whose recipient was erased, abandoned ones included."""
    abandoned_shipments: int = 0
    """Of those, shipments that never reached a final status (decision 0208)."""
    batches: int = 0
    erased: dict[str, int] = field(default_factory=dict)
    webhook_deliveries: int = 0
    previous_webhook_secrets: int = 0
    idempotency_keys: int = 0
    request_log: int = 0
    support_access_log: int = 0
    """Staff reads of shipments recorded longer ago than the audit-log retention."""


@dataclass(frozen=True)
class _Walk:
    """Which shipments are due, in the order of the partial index that finds them: the purge
    walks ``key, id`` from the oldest, each pick after the last one's end."""

    key: str
    cutoff: datetime
    due: tuple[ColumnElement[bool], ...]

    def conditions(self) -> tuple[ColumnElement[bool], ...]:
        return (
            *self.due,
            SHIPMENTS.c[self.key] <= self.cutoff,
            SHIPMENTS.c.recipient_erased_at.is_(None),
        )


def _finished(cutoff: datetime) -> _Walk:
    """Shipments that reached a final status before the cutoff."""
    return _Walk("final_at", cutoff, (SHIPMENTS.c.final_at.is_not(None),))


def _abandoned(cutoff: datetime) -> _Walk:
    """Shipments without a final status whose status last changed before the cutoff: a label
    nobody handed to a carrier, a sandbox shipment never simulated, a parcel the carrier
    stopped reporting on."""
    return _Walk("status_changed_at", cutoff, (SHIPMENTS.c.final_at.is_(None),))


async def purge_expired_recipients(
    sessionmaker: async_sessionmaker[AsyncSession],
    *,
    now: datetime,
    retention_days: int,
    abandoned_after_days: int | None = None,
    batch_size: int = 1000,
    concurrency: int = 1,
) -> PurgeReport:
    """Erase recipients whose shipment reached a final status more than ``retention_days``
    ago and, when ``abandoned_after_days`` is given, those of shipments that never did and
    whose status has not changed for that long, nor for ``retention_days`` (decision 0208).
    Each batch is its own short transaction that locks only its own rows; running it again
    finds nothing to do.

    Batches are picked one after another in key order and written by ``concurrency`` sessions
    side by side, so the database erases one batch while the next is being picked and written
    (decision 0706)."""
    report = PurgeReport()
    values = erased_recipient_values(now)

    async def erase(walk: _Walk) -> int:
        return await _erase_due(
            sessionmaker,
            walk,
            values,
            report=report,
            batch_size=batch_size,
            concurrency=concurrency,
        )

    await erase(_finished(now - timedelta(days=retention_days)))
    if abandoned_after_days is not None:
        # Abandoned shipments are never erased sooner than a final one with the same last change.
        cutoff = now - timedelta(days=max(abandoned_after_days, retention_days))
        report.abandoned_shipments = await erase(_abandoned(cutoff))
    return report


async def _erase_due(
    sessionmaker: async_sessionmaker[AsyncSession],
    walk: _Walk,
    values: dict[str, Any],
    *,
    report: PurgeReport,
    batch_size: int,
    concurrency: int,
) -> int:
    """Erase the shipments ``walk`` finds; returns how many."""
    key = SHIPMENTS.c[walk.key]
    picking = asyncio.Lock()
    # Keyset: each pick starts after the last one's (key, id). Starting from the oldest again
    # would step over every index entry the earlier batches left dead (a quadratic walk), and
    # over the rows another session is erasing.
    after: tuple[datetime, uuid.UUID] | None = None
    exhausted = False
    total = 0

    async def pick() -> list[uuid.UUID]:
        nonlocal after, exhausted
        async with picking:
            if exhausted:
                return []
            query = select(key, SHIPMENTS.c.id).where(*walk.conditions())
            if after is not None:
                query = query.where(tuple_(key, SHIPMENTS.c.id) > after)
            async with sessionmaker() as session:
                rows = (
                    await session.execute(query.order_by(key, SHIPMENTS.c.id).limit(batch_size))
                ).all()
            exhausted = len(rows) < batch_size
            if rows:
                after = (rows[-1][0], rows[-1][1])
            return [row[1] for row in rows]

    async def erase() -> None:
        nonlocal total
        while ids := await pick():
            async with sessionmaker() as session:
                # The due conditions again: PostgreSQL re-checks them on each row once it holds
                # the row's lock, so a row a privacy request erased since the pick (or, for an
                # abandoned shipment, one that moved on) is passed over.
                erased_ids = (
                    await session.scalars(
                        update(SHIPMENTS)
                        .where(among(session, SHIPMENTS.c.id, ids), *walk.conditions())
                        .values(**values)
                        .returning(SHIPMENTS.c.id)
                    )
                ).all()
                erased = {Shipment.__tablename__: len(erased_ids)}
                if erased_ids:
                    erased |= await erase_dependents(session, erased_ids)
                await session.commit()
            report.batches += 1
            report.shipments += len(erased_ids)
            total += len(erased_ids)
            for table, count in erased.items():
                report.erased[table] = report.erased.get(table, 0) + count

    if concurrency <= 1:
        await erase()
    else:
        async with asyncio.TaskGroup() as group:
            for _ in range(concurrency):
                group.create_task(erase())
    return total


async def purge_delivery_log(
    sessionmaker: async_sessionmaker[AsyncSession], *, now: datetime, retention_days: int
) -> int:
    cutoff = now - timedelta(days=retention_days)
    async with sessionmaker() as session:
        result = await session.execute(
            delete(WebhookDelivery).where(
                WebhookDelivery.created_at < cutoff,
                WebhookDelivery.state != DeliveryState.PENDING,
            )
        )
        await session.commit()
    return int(getattr(result, "rowcount", 0) or 0)


async def expire_previous_webhook_secrets(
    sessionmaker: async_sessionmaker[AsyncSession], *, now: datetime
) -> int:
    """Secrets from before a rotation that no longer sign are credentials nobody needs."""
    async with sessionmaker() as session:
        result = await session.execute(
            update(WebhookEndpoint)
            .where(WebhookEndpoint.previous_secret_expires_at <= now)
            .values(previous_secret_ciphertext=None, previous_secret_expires_at=None)
        )
        await session.commit()
    return int(getattr(result, "rowcount", 0) or 0)


async def run_retention(
    sessionmaker: async_sessionmaker[AsyncSession], settings: ShippingSettings, *, now: datetime
) -> PurgeReport:
    """Everything this service expires: recipients, the delivery log, webhook secrets past
    their rotation, idempotency keys, the request log and the support access log."""
    report = await purge_expired_recipients(
        sessionmaker,
        now=now,
        retention_days=settings.recipient_retention_days,
        abandoned_after_days=settings.recipient_abandoned_after_days,
        batch_size=settings.purge_batch_size,
        concurrency=1 if settings.is_sqlite else settings.purge_concurrency,
    )
    report.webhook_deliveries = await purge_delivery_log(
        sessionmaker, now=now, retention_days=settings.webhook_log_retention_days
    )
    report.previous_webhook_secrets = await expire_previous_webhook_secrets(sessionmaker, now=now)
    report.idempotency_keys = await purge_expired_keys(sessionmaker, IdempotencyKey, now=now)
    report.request_log = await purge_expired_request_log(
        sessionmaker, RequestLog, retention_days=settings.request_log_retention_days, now=now
    )
    # Register: audit logs 5 years. Entries outlive the shipments they name (erasure redacts
    # only the reason), so nothing else ever deletes them.
    report.support_access_log = await purge_created_before(
        sessionmaker,
        SupportAccess,
        SupportAccess.accessed_at,
        cutoff=now - timedelta(days=settings.audit_log_retention_days),
        batch_size=settings.purge_batch_size,
    )
    return report
