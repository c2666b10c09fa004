"""The privacy_api application."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.app import Overrides, ServiceDefinition, build_app
from libs.common.http import ServiceCaller
from libs.common.idempotency import IdempotencyStore
from libs.common.metrics import DatabaseGauge, outbox_gauges
from services.privacy_api.audit.endpoints import router as audit_router
from services.privacy_api.consents.endpoints import router as consents_router
from services.privacy_api.disclosures.endpoints import router as disclosures_router
from services.privacy_api.incidents.endpoints import router as incidents_router
from services.privacy_api.models import (
    IdempotencyKey,
    MailOutbox,
    PrivacyTask,
    RequestLog,
    TaskStatus,
)
from services.privacy_api.register.endpoints import router as register_router
from services.privacy_api.requests.endpoints import router as requests_router
from services.privacy_api.settings import PrivacySettings
from services.privacy_api.subjects.endpoints import router as subjects_router
from services.privacy_api.tasks.worker import worker_lifespan

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
VERSION = "0.1.0"

TAGS = [
    {
        "name": "privacy requests",
        "description": "View, correct, restrict, erase, object, take along (AVG art. 15-21).",
    },
    {
        "name": "consents",
        "description": "Profiling, personalised advertisements, analytics cookies.",
    },
    {
        "name": "processing activities",
        "description": "The register of processing activities (art. 30).",
    },
    {"name": "disclosures", "description": "Authority requests (privacy officer)."},
    {"name": "incidents", "description": "The breach register (privacy officer)."},
    {"name": "audit log", "description": "Staff actions in this service (privacy officer)."},
    {"name": "internal", "description": "Service-to-service routes; never routed by the gateway."},
]


_OPEN_TASKS = (TaskStatus.PENDING, TaskStatus.RUNNING, TaskStatus.FAILED)


async def _tasks(session: AsyncSession) -> dict[tuple[str, ...], float]:
    rows = await session.execute(
        select(PrivacyTask.service, PrivacyTask.status, func.count())
        .where(PrivacyTask.status.in_(_OPEN_TASKS))
        .group_by(PrivacyTask.service, PrivacyTask.status)
    )
    return {(service, status): float(count) for service, status, count in rows}


async def _oldest_due_task(session: AsyncSession) -> float:
    now = datetime.now(UTC)
    oldest = await session.scalar(
        select(func.min(PrivacyTask.next_attempt_at)).where(
            PrivacyTask.status == TaskStatus.PENDING, PrivacyTask.next_attempt_at <= now
        )
    )
    return (now - oldest).total_seconds() if oldest else 0.0


async def _mail_waiting(session: AsyncSession) -> dict[tuple[str, ...], float]:
    count = await session.scalar(select(func.count()).where(MailOutbox.sent_at.is_(None)))
    return {("mail",): float(count or 0)}


async def _mail_oldest_due(session: AsyncSession) -> dict[tuple[str, ...], float]:
    now = datetime.now(UTC)
    oldest = await session.scalar(
        select(func.min(MailOutbox.next_attempt_at)).where(
            MailOutbox.sent_at.is_(None), MailOutbox.next_attempt_at <= now
        )
    )
    return {("mail",): (now - oldest).total_seconds() if oldest else 0.0}


# Scraped from /metrics (decision 0804). Succeeded tasks are left out: they only ever grow.
DATABASE_GAUGES = (
    DatabaseGauge(
        "privacy_tasks",
        "Tasks of privacy requests not yet done, or failed, by service and status.",
        _tasks,
        ("service", "status"),
    ),
    DatabaseGauge(
        "privacy_task_oldest_due_seconds",
        "How long the longest-waiting due task has been due; growing means no worker runs.",
        _oldest_due_task,
    ),
    *outbox_gauges(_mail_waiting, _mail_oldest_due),
)


@contextlib.asynccontextmanager
async def shipping_caller(app: FastAPI) -> AsyncIterator[None]:
    """The caller for shipping's subject API, on the app's shared HTTP client."""
    settings: PrivacySettings = app.state.settings
    app.state.shipping = ServiceCaller(
        app.state.http, base_url=settings.shipping_url, name="shipping"
    )
    yield


@contextlib.asynccontextmanager
async def idempotency_store(app: FastAPI) -> AsyncIterator[None]:
    """The keys of creates sent with ``Idempotency-Key`` (decision 0202); kept 24 hours."""
    app.state.idempotency = IdempotencyStore(IdempotencyKey)
    yield


def create_app(
    settings: PrivacySettings | None = None, overrides: Overrides | None = None
) -> FastAPI:
    settings = settings or PrivacySettings()
    definition = ServiceDefinition(
        settings=settings,
        title="Parcel Pro Privacy API",
        description="Data-subject requests, consents and the privacy registers.",
        version=VERSION,
        routers=[
            requests_router,
            consents_router,
            register_router,
            disclosures_router,
            incidents_router,
            audit_router,
            subjects_router,
        ],
        request_log_model=RequestLog,
        migrations_dir=MIGRATIONS_DIR,
        openapi_tags=TAGS,
        lifespans=[shipping_caller, idempotency_store, worker_lifespan],
        database_gauges=DATABASE_GAUGES,
    )
    return build_app(definition, overrides)
