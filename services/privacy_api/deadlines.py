"""The deadlines run (a CronJob, and partly the worker): overdue requests and incidents are
flagged and summarised to the privacy officer; expired exports, old mail and expired
idempotency keys are deleted; unverified requests are closed; closed requests lose their
contact details after the proof-of-handling period; audit log entries go after five years."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import timedelta

import structlog

from libs.common.idempotency import purge_expired_keys
from libs.common.mail import OutgoingMail
from libs.common.retention import purge_created_before
from services.privacy_api.context import Collaborators
from services.privacy_api.incidents import repository as incidents
from services.privacy_api.models import AuditLog, IdempotencyKey, Incident, PrivacyRequest
from services.privacy_api.outbox import service as outbox
from services.privacy_api.requests import repository as requests

log = structlog.get_logger("privacy.deadlines")


@dataclass
class DeadlineReport:
    overdue_requests: list[PrivacyRequest] = field(default_factory=list)
    newly_overdue_requests: int = 0
    overdue_incidents: list[Incident] = field(default_factory=list)
    newly_overdue_incidents: int = 0
    exports_purged: int = 0
    unverified_closed: int = 0
    requests_anonymised: int = 0
    mail_purged: int = 0
    idempotency_keys_purged: int = 0
    audit_log_purged: int = 0


async def purge_expired_exports(app: Collaborators) -> int:
    """Delete ZIPs past their retention; the request keeps that it had one (and when)."""
    now = app.now()
    async with app.database.sessionmaker() as session, session.begin():
        expired = await requests.expired_exports(session, now)
        for request in expired:
            if request.export_file:
                path = app.settings.exports_path / request.export_file
                await asyncio.to_thread(path.unlink, True)
            request.export_file = None
            request.export_purged_at = now
    if expired:
        log.info("exports_purged", count=len(expired))
    return len(expired)


async def purge_sent_mail(app: Collaborators) -> int:
    cutoff = app.now() - timedelta(days=app.settings.outbox_retention_days)
    return await outbox.purge_sent(app.database.sessionmaker, before=cutoff)


async def purge_expired_idempotency_keys(app: Collaborators) -> int:
    """Stored answers of creates go after 24 hours (decision 0202): they copy personal data."""
    return await purge_expired_keys(app.database.sessionmaker, IdempotencyKey, now=app.now())


async def purge_expired_audit_log(app: Collaborators) -> int:
    """Delete audit log entries older than ``audit_log_retention_days``: the register keeps audit
    logs five years. Entries outlive the requests they name (anonymising a closed request leaves
    them), so nothing else ever deletes them; the database refuses it for entries younger than a
    year (decision 0305)."""
    return await purge_created_before(
        app.database.sessionmaker,
        AuditLog,
        AuditLog.at,
        cutoff=app.now() - timedelta(days=app.settings.audit_log_retention_days),
    )


def _summary(report: DeadlineReport) -> str:
    lines = ["Deadlines of the privacy registers", ""]
    lines.append(f"Overdue privacy requests: {len(report.overdue_requests)}")
    for request in report.overdue_requests:
        lines.append(
            f"- {request.id} {request.type} ({request.source}), status {request.status}, "
            f"due {request.due_at:%Y-%m-%d %H:%M} UTC"
        )
    lines += ["", f"Incidents past the 72-hour AP deadline: {len(report.overdue_incidents)}"]
    for incident in report.overdue_incidents:
        lines.append(
            f"- {incident.id} {incident.title}: aware {incident.became_aware_at:%Y-%m-%d %H:%M}, "
            f"deadline {incident.ap_deadline:%Y-%m-%d %H:%M} UTC, risk {incident.risk}"
        )
    lines += [
        "",
        f"Exports deleted after their retention period: {report.exports_purged}",
        f"Unverified requests closed: {report.unverified_closed}",
    ]
    return "\n".join(lines) + "\n"


async def run_deadlines(app: Collaborators) -> DeadlineReport:
    report = DeadlineReport()
    now = app.now()
    async with app.database.sessionmaker() as session, session.begin():
        report.unverified_closed = await requests.reject_unverified(
            session, now, "the e-mail address was not verified within 30 minutes"
        )
        report.newly_overdue_requests = len(await requests.flag_overdue(session, now))
        report.overdue_requests = await requests.overdue(session, now)
        report.newly_overdue_incidents = len(await incidents.flag_overdue(session, now))
        report.overdue_incidents = await incidents.overdue(session, now)
        cutoff = now - timedelta(days=app.settings.request_retention_days)
        report.requests_anonymised = await requests.anonymise_closed_before(session, cutoff, now)
        if report.overdue_requests or report.overdue_incidents:
            await outbox.enqueue(
                session,
                OutgoingMail(
                    to=app.settings.privacy_officer_email,
                    subject=(
                        f"Privacy deadlines: {len(report.overdue_requests)} overdue requests, "
                        f"{len(report.overdue_incidents)} overdue incidents"
                    ),
                    text=_summary(report),
                ),
                now=now,
            )
    report.exports_purged = await purge_expired_exports(app)
    report.mail_purged = await purge_sent_mail(app)
    report.idempotency_keys_purged = await purge_expired_idempotency_keys(app)
    report.audit_log_purged = await purge_expired_audit_log(app)
    log.info(
        "deadlines_run",
        overdue_requests=len(report.overdue_requests),
        overdue_incidents=len(report.overdue_incidents),
        exports_purged=report.exports_purged,
        unverified_closed=report.unverified_closed,
        requests_anonymised=report.requests_anonymised,
        idempotency_keys_purged=report.idempotency_keys_purged,
        audit_log_purged=report.audit_log_purged,
    )
    return report
