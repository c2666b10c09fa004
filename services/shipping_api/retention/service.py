"""Retention of recipients' personal data: at least three months (privacy statement) and no
longer than configured after a shipment's final status. Expired recipients are erased
set-based in batches; counts stay (postcode area, country, status, dates), names go."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import delete, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from libs.common.idempotency import purge_expired_keys
from libs.common.request_log import purge_expired_request_log
from services.shipping_api.models import (
    IdempotencyKey,
    RequestLog,
    Shipment,
    WebhookDelivery,
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
    idempotency_keys: int = 0
    request_log: int = 0


async def purge_expired_recipients(
    sessionmaker: async_sessionmaker[AsyncSession],
    *,
    now: datetime,
    retention_days: int,
    batch_size: int = 1000,
) -> PurgeReport:
    """Erase recipients whose shipment reached a final status more than ``retention_days``
    ago. Each batch is its own short transaction that locks only its own rows; running it
    again finds nothing to do."""
    cutoff = now - timedelta(days=retention_days)
    report = PurgeReport()
    values = erased_recipient_values(now)
    # Keyset: each batch starts after the last one's (final_at, id). Starting from the oldest
    # again would step over every index entry the earlier batches left dead (a quadratic walk).
    after: tuple[datetime, uuid.UUID] | None = None
    while True:
        due = select(Shipment.id).where(
            Shipment.final_at <= cutoff,
            Shipment.final_at.is_not(None),
            Shipment.recipient_erased_at.is_(None),
        )
        if after is not None:
            due = due.where(tuple_(Shipment.final_at, Shipment.id) > after)
        # One statement picks and erases the batch; the rows are locked as they are picked
        # (FOR UPDATE, on PostgreSQL), so a row a privacy request erases meanwhile is passed
        # over and the batch is still full while due rows remain. MATERIALIZED: as a plain
        # IN subquery PostgreSQL may run the pick again for every row it checks, and each
        # run then passes over the rows just erased and locks the next ones (the whole
        # table in one statement).
        batch = (
            due.order_by(Shipment.final_at, Shipment.id)
            .limit(batch_size)
            .with_for_update()
            .cte("batch")
            .prefix_with("MATERIALIZED", dialect="postgresql")
        )
        async with sessionmaker() as session:
            rows = (
                await session.execute(
                    update(SHIPMENTS)
                    .where(
                        SHIPMENTS.c.id.in_(select(batch.c.id)),
                        SHIPMENTS.c.recipient_erased_at.is_(None),
                    )
                    .values(**values)
                    .returning(SHIPMENTS.c.final_at, SHIPMENTS.c.id)
                )
            ).all()
            if not rows:
                return report
            ids = [row.id for row in rows]
            erased = {Shipment.__tablename__: len(ids)} | await erase_dependents(session, ids)
            await session.commit()
        after = max((row.final_at, row.id) for row in rows)
        report.batches += 1
        report.shipments += len(ids)
        for table, count in erased.items():
            report.erased[table] = report.erased.get(table, 0) + count
        if len(ids) < batch_size:
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


async def run_retention(
    sessionmaker: async_sessionmaker[AsyncSession], settings: ShippingSettings, *, now: datetime
) -> PurgeReport:
    """Everything this service expires: recipients, the delivery log, idempotency keys and
    the request log."""
    report = await purge_expired_recipients(
        sessionmaker,
        now=now,
        retention_days=settings.recipient_retention_days,
        batch_size=settings.purge_batch_size,
    )
    report.webhook_deliveries = await purge_delivery_log(
        sessionmaker, now=now, retention_days=settings.webhook_log_retention_days
    )
    report.idempotency_keys = await purge_expired_keys(sessionmaker, IdempotencyKey, now=now)
    report.request_log = await purge_expired_request_log(
        sessionmaker, RequestLog, retention_days=settings.request_log_retention_days, now=now
    )
    return report
