"""Retention of recipients' personal data: at least three months (privacy statement) and no
longer than configured after a shipment's final status. Expired recipients are erased
set-based in batches; counts stay (postcode area, country, status, dates), names go."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import delete, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from libs.common.db import among
from libs.common.idempotency import purge_expired_keys
from libs.common.request_log import purge_expired_request_log
from services.shipping_api.models import (
    IdempotencyKey,
    RequestLog,
    Shipment,
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
    batches: int = 0
    erased: dict[str, int] = field(default_factory=dict)
    webhook_deliveries: int = 0
    previous_webhook_secrets: int = 0
    idempotency_keys: int = 0
    request_log: int = 0


async def purge_expired_recipients(
    sessionmaker: async_sessionmaker[AsyncSession],
    *,
    now: datetime,
    retention_days: int,
    batch_size: int = 1000,
    concurrency: int = 1,
) -> PurgeReport:
    """Erase recipients whose shipment reached a final status more than ``retention_days``
    ago. Each batch is its own short transaction that locks only its own rows; running it
    again finds nothing to do.

    Batches are picked one after another in key order and written by ``concurrency`` sessions
    side by side, so the database erases one batch while the next is being picked and written
    (decision 0706)."""
    cutoff = now - timedelta(days=retention_days)
    report = PurgeReport()
    values = erased_recipient_values(now)
    due = (
        Shipment.final_at <= cutoff,
        Shipment.final_at.is_not(None),
        Shipment.recipient_erased_at.is_(None),
    )
    picking = asyncio.Lock()
    # Keyset: each pick starts after the last one's (final_at, id). Starting from the oldest
    # again would step over every index entry the earlier batches left dead (a quadratic walk),
    # and over the rows another session is erasing.
    after: tuple[datetime, uuid.UUID] | None = None
    exhausted = False

    async def pick() -> list[uuid.UUID]:
        nonlocal after, exhausted
        async with picking:
            if exhausted:
                return []
            query = select(Shipment.final_at, Shipment.id).where(*due)
            if after is not None:
                query = query.where(tuple_(Shipment.final_at, Shipment.id) > after)
            async with sessionmaker() as session:
                rows = (
                    await session.execute(
                        query.order_by(Shipment.final_at, Shipment.id).limit(batch_size)
                    )
                ).all()
            exhausted = len(rows) < batch_size
            if rows:
                after = (rows[-1].final_at, rows[-1].id)
            return [row.id for row in rows]

    async def erase() -> None:
        while ids := await pick():
            async with sessionmaker() as session:
                # The due conditions again: PostgreSQL re-checks them on each row once it holds
                # the row's lock, so a row a privacy request erased since the pick is passed over.
                erased_ids = (
                    await session.scalars(
                        update(SHIPMENTS)
                        .where(
                            among(session, SHIPMENTS.c.id, ids),
                            SHIPMENTS.c.final_at <= cutoff,
                            SHIPMENTS.c.recipient_erased_at.is_(None),
                        )
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
            for table, count in erased.items():
                report.erased[table] = report.erased.get(table, 0) + count

    if concurrency <= 1:
        await erase()
    else:
        async with asyncio.TaskGroup() as group:
            for _ in range(concurrency):
                group.create_task(erase())
    return report


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
    their rotation, idempotency keys and the request log."""
    report = await purge_expired_recipients(
        sessionmaker,
        now=now,
        retention_days=settings.recipient_retention_days,
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
    return report
