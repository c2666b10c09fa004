"""Closing a request once every service has answered: the export ZIP, the final status and the
mail to the subject (through the outbox, so it survives a crash)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta
from pathlib import Path

import structlog

from libs.common.db import retry_while_unavailable
from services.privacy_api.context import Collaborators
from services.privacy_api.exports.builder import (
    ExportStats,
    MalformedPart,
    build_zip,
    remove_parts,
)
from services.privacy_api.exports.summary import summary_json, summary_text
from services.privacy_api.models import (
    PrivacyRequest,
    PrivacyTask,
    RequestSource,
    RequestStatus,
    RequestType,
    TaskStatus,
)
from services.privacy_api.outbox import service as outbox
from services.privacy_api.register.service import register
from services.privacy_api.requests import mails
from services.privacy_api.tasks import repository as tasks_repository

log = structlog.get_logger("privacy.completion")

EXPORT_TYPES = {RequestType.ACCESS.value, RequestType.PORTABILITY.value}


def parts_dir(app: Collaborators, request_id: uuid.UUID) -> Path:
    return app.settings.exports_path / "parts" / str(request_id)


def part_path(app: Collaborators, request_id: uuid.UUID, service: str) -> Path:
    """Where a service's share is split into per-category spools as it streams in."""
    return parts_dir(app, request_id) / service


def _part(app: Collaborators, request_id: uuid.UUID, service: str) -> Path:
    """The spools of a service's share, or the NDJSON file a worker of an earlier release
    wrote for it."""
    spools = part_path(app, request_id, service)
    return spools if spools.is_dir() else spools.with_name(f"{service}.ndjson")


def selection(request: PrivacyRequest) -> set[str] | None:
    """The PII categories a disclosure's export is limited to (decision 0308): each service
    keeps only its columns annotated with them; ``None``: everything."""
    return set(request.categories) if request.categories else None


def _build(
    app: Collaborators, request: PrivacyRequest, services: list[str], now: datetime
) -> tuple[str, int]:
    name = f"{request.id}.zip"

    def documents(stats: ExportStats) -> list[tuple[str, bytes]]:
        text = summary_text(
            register(),
            request_id=str(request.id),
            request_type=request.type,
            received_at=request.received_at,
            generated_at=now,
            records=stats.records,
            found=stats.pii_categories,
        )
        return [
            ("summary.txt", text.encode()),
            ("summary.json", summary_json(register(), stats.records, stats.pii_categories)),
        ]

    stats = build_zip(
        {service: _part(app, request.id, service) for service in services},
        app.settings.exports_path / name,
        documents=documents,
        categories=selection(request),
    )
    remove_parts(parts_dir(app, request.id))
    return name, stats.size_bytes


def _notice_address(app: Collaborators, request: PrivacyRequest) -> str | None:
    if request.source in {RequestSource.ACCOUNT.value, RequestSource.EMAIL.value}:
        return request.email
    # Letters are answered by post and disclosures go to the authority: the officer does it.
    return app.settings.privacy_officer_email


async def finish_request(app: Collaborators, request_id: uuid.UUID) -> bool:
    """Close the request if all its tasks have ended; ``False`` when another worker does."""
    sessionmaker = app.database.sessionmaker
    now = app.now()
    lease = timedelta(seconds=app.settings.task_lease_seconds)
    async with sessionmaker() as session, session.begin():
        if not await tasks_repository.claim_finishing(session, request_id, now=now, lease=lease):
            return False
        request = await session.get(PrivacyRequest, request_id, populate_existing=True)
        tasks = await tasks_repository.tasks_of(session, request_id)
    if request is None or any(t.status in tasks_repository.OPEN_TASK for t in tasks):
        return False
    failures = [t for t in tasks if t.status == TaskStatus.FAILED.value]
    export: tuple[str, int] | None = None
    if not failures and request.type in EXPORT_TYPES:
        try:
            export = await asyncio.to_thread(_build, app, request, [t.service for t in tasks], now)
        except MalformedPart as exc:
            reason = f"the export could not be assembled: {exc}"
            return await _close(app, request_id, tasks, failure=reason)
    if failures:
        reason = "; ".join(f"{t.service}: {t.last_error}" for t in failures)
        return await _close(app, request_id, tasks, failure=reason)
    return await _close(app, request_id, tasks, export=export)


async def _close(
    app: Collaborators,
    request_id: uuid.UUID,
    tasks: list[PrivacyTask],
    *,
    failure: str | None = None,
    export: tuple[str, int] | None = None,
) -> bool:
    now = app.now()
    # The ZIP is built and its parts removed: closing must not be lost to a database restart,
    # or the next attempt (once the finishing lease lapsed) would find no parts to build from.
    return await retry_while_unavailable(
        lambda: _record_close(app, request_id, tasks, now, failure=failure, export=export),
        within=app.settings.task_lease_seconds - 5,
    )


async def _record_close(
    app: Collaborators,
    request_id: uuid.UUID,
    tasks: list[PrivacyTask],
    now: datetime,
    *,
    failure: str | None,
    export: tuple[str, int] | None,
) -> bool:
    async with app.database.sessionmaker() as session, session.begin():
        request = await session.get(PrivacyRequest, request_id, populate_existing=True)
        if request is None or request.status not in (
            RequestStatus.VERIFIED.value,
            RequestStatus.IN_PROGRESS.value,
        ):
            return False
        request.completed_at = now
        request.finalize_lease_until = None
        if failure is not None:
            request.status = RequestStatus.FAILED.value
            request.failure_reason = failure[:4000]
        else:
            request.status = RequestStatus.COMPLETED.value
        if export is not None:
            request.export_file, request.export_size = export
            request.export_expires_at = now + timedelta(days=app.settings.export_retention_days)
        to = _notice_address(app, request)
        if to:
            if request.source in {RequestSource.LETTER.value, RequestSource.DISCLOSURE.value}:
                mail = mails.officer_notice(to, request, tasks)
            elif failure is not None:
                mail = mails.failed(to, request, tasks)
            else:
                mail = mails.completed(to, request, tasks, app.settings.public_base_url)
            await outbox.enqueue(session, mail, now=now, privacy_request_id=request.id)
    log.info("privacy_request_closed", request_id=str(request_id), failed=failure is not None)
    return True
