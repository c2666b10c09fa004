"""The shipping_api application."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from sqlalchemy import ColumnElement, func, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.app import Lifespan, Overrides, ServiceDefinition, build_app
from libs.common.idempotency import IdempotencyStore
from libs.common.metrics import outbox_gauges
from services.shipping_api.carriers.catalogue import rate_table
from services.shipping_api.carriers.endpoints import router as carriers_router
from services.shipping_api.labels.endpoints import router as labels_router
from services.shipping_api.labels.sender import SenderDirectory
from services.shipping_api.models import (
    AccountNotice,
    IdempotencyKey,
    RecipientMail,
    RequestLog,
    WebhookDelivery,
)
from services.shipping_api.notes.endpoints import router as notes_router
from services.shipping_api.notifications.account_notices import AccountNoticeDispatcher
from services.shipping_api.notifications.outbox import MailState
from services.shipping_api.notifications.sender import RecipientMailSender
from services.shipping_api.recipients.blind_index import BlindIndex
from services.shipping_api.reports.endpoints import router as reports_router
from services.shipping_api.settings import ShippingSettings
from services.shipping_api.shipments.endpoints import router as shipments_router
from services.shipping_api.shipments.fastpath import (
    DirectShipmentCreates,
    DirectShipmentReads,
)
from services.shipping_api.shipments.lifecycle import Outboxes
from services.shipping_api.subjects.endpoints import router as subjects_router
from services.shipping_api.tracking.cache import TrackingCache
from services.shipping_api.tracking.endpoints import router as tracking_router
from services.shipping_api.tracking.fastpath import CachedTrackingAnswers
from services.shipping_api.webhooks.delivery import WebhookDispatcher
from services.shipping_api.webhooks.endpoints import router as webhooks_router
from services.shipping_api.webhooks.outbox import DeliveryState
from services.shipping_api.webhooks.service import WebhookPolicy
from services.shipping_api.webhooks.ssrf import Resolver
from services.shipping_api.workers import outbox_worker, retention_worker

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
VERSION = "0.1.0"

OPENAPI_TAGS = [
    {"name": "shipments", "description": "Create, list, read, cancel shipments; the sandbox."},
    {"name": "labels", "description": "A6 PDF and ZPL labels with a Code 128 barcode."},
    {"name": "tracking", "description": "Public track & trace."},
    {"name": "carriers", "description": "Status events pushed by carriers (HMAC-signed)."},
    {"name": "webhooks", "description": "Signed shipment events to your endpoints; delivery log."},
    {"name": "support notes", "description": "Staff only: the contact history of a shipment."},
    {"name": "reports", "description": "Anonymous counts (k-anonymous, no restricted subjects)."},
    {"name": "internal", "description": "Data-subject calls of privacy_api (service tokens)."},
]


@dataclass(frozen=True, slots=True)
class _OutboxRows:
    """Which rows of an outbox table wait and which were given up on (``None``: such rows are
    deleted, not kept)."""

    model: Any
    next_attempt_at: Any
    pending: ColumnElement[bool]
    failed: ColumnElement[bool] | None


_OUTBOXES = {
    "webhooks": _OutboxRows(
        WebhookDelivery,
        WebhookDelivery.next_attempt_at,
        WebhookDelivery.state == DeliveryState.PENDING,
        WebhookDelivery.state == DeliveryState.FAILED,
    ),
    "recipient_mail": _OutboxRows(
        RecipientMail,
        RecipientMail.next_attempt_at,
        RecipientMail.state == MailState.PENDING,
        RecipientMail.state == MailState.FAILED,
    ),
    # Every row waits: a notice is deleted once identity has it or it is given up on.
    "account_notices": _OutboxRows(AccountNotice, AccountNotice.next_attempt_at, true(), None),
}


async def _outbox_backlog(session: AsyncSession) -> dict[tuple[str, ...], float]:
    counts: dict[tuple[str, ...], float] = {}
    for name, rows in _OUTBOXES.items():
        count = await session.scalar(
            select(func.count()).select_from(rows.model).where(rows.pending)
        )
        counts[(name,)] = float(count or 0)
    return counts


async def _outbox_failed(session: AsyncSession) -> dict[tuple[str, ...], float]:
    counts: dict[tuple[str, ...], float] = {}
    for name, rows in _OUTBOXES.items():
        if rows.failed is None:
            continue
        count = await session.scalar(
            select(func.count()).select_from(rows.model).where(rows.failed)
        )
        counts[(name,)] = float(count or 0)
    return counts


async def _outbox_oldest_due(session: AsyncSession) -> dict[tuple[str, ...], float]:
    now = datetime.now(UTC)
    ages: dict[tuple[str, ...], float] = {}
    for name, rows in _OUTBOXES.items():
        oldest = await session.scalar(
            select(func.min(rows.next_attempt_at)).where(rows.pending, rows.next_attempt_at <= now)
        )
        ages[(name,)] = (now - oldest).total_seconds() if oldest else 0.0
    return ages


# Scraped from /metrics (decision 0804); the same names in every service, labelled by outbox.
DATABASE_GAUGES = outbox_gauges(_outbox_backlog, _outbox_oldest_due, _outbox_failed)


def _collaborators(settings: ShippingSettings) -> Lifespan:
    """The service's own collaborators on ``app.state``, built from settings at start-up."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.blind_index = BlindIndex(settings.blind_index_key)
        app.state.rate_table = rate_table()
        app.state.idempotency = IdempotencyStore(
            IdempotencyKey, ttl=timedelta(hours=settings.idempotency_ttl_hours)
        )
        app.state.tracking_cache = TrackingCache(ttl_seconds=settings.tracking_cache_seconds)
        app.state.outboxes = Outboxes(
            webhook_retry=timedelta(hours=settings.webhook_retry_hours),
            mail_retry=timedelta(hours=settings.mail_retry_hours),
            tracking_cache=app.state.tracking_cache,
        )
        app.state.senders = SenderDirectory(
            app.state.identity, app.state.service_tokens, ttl_seconds=settings.sender_cache_seconds
        )
        app.state.webhook_policy = WebhookPolicy(
            resolver=Resolver(),
            allow_loopback=settings.webhook_allow_loopback,
            secrets=settings.webhook_secrets(),
        )
        app.state.webhook_dispatcher = WebhookDispatcher(
            app.state.database.sessionmaker,
            app.state.http,
            app.state.webhook_policy,
            timeout_seconds=settings.webhook_timeout_seconds,
            batch_size=settings.outbox_batch_size,
            disable_after=timedelta(days=settings.webhook_disable_after_days),
        )
        app.state.recipient_mail = RecipientMailSender(
            app.state.database.sessionmaker,
            app.state.mailer,
            public_base_url=settings.public_base_url,
            tracking_page_url=settings.tracking_page_url,
            batch_size=settings.outbox_batch_size,
        )
        app.state.account_notices = AccountNoticeDispatcher(
            app.state.database.sessionmaker,
            app.state.identity,
            app.state.service_tokens,
            batch_size=settings.outbox_batch_size,
        )
        yield

    return lifespan


def create_app(
    settings: ShippingSettings | None = None, overrides: Overrides | None = None
) -> FastAPI:
    settings = settings or ShippingSettings()
    definition = ServiceDefinition(
        settings=settings,
        title="Parcel Pro Shipping API",
        description="Shipments, labels, track & trace, notifications and reports.",
        version=VERSION,
        routers=[
            shipments_router,
            labels_router,
            tracking_router,
            carriers_router,
            webhooks_router,
            notes_router,
            reports_router,
            subjects_router,
        ],
        request_log_model=RequestLog,
        migrations_dir=MIGRATIONS_DIR,
        openapi_tags=OPENAPI_TAGS,
        lifespans=[
            _collaborators(settings),
            outbox_worker(settings),
            retention_worker(settings),
        ],
        database_gauges=DATABASE_GAUGES,
        middleware=[CachedTrackingAnswers, DirectShipmentReads, DirectShipmentCreates],
    )
    return build_app(definition, overrides)
