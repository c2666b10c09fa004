"""Disclosure rules: nothing is given before the authority's powers were checked and the
officer approved; an approval produces an export limited to the requested categories, through
the same durable tasks as a subject's access request."""

from __future__ import annotations

import uuid
from datetime import datetime
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.auth import Principal
from libs.common.errors import Conflict, NotFound, ValidationFailed
from services.privacy_api.audit import service as audit
from services.privacy_api.context import Caller, Collaborators
from services.privacy_api.disclosures import repository
from services.privacy_api.disclosures.schemas import (
    DisclosureCreate,
    DisclosureDecide,
    DisclosureRead,
)
from services.privacy_api.models import (
    Authority,
    Disclosure,
    DisclosureDecision,
    PrivacyRequest,
    RequestSource,
    RequestStatus,
    RequestType,
    VerificationMethod,
)
from services.privacy_api.requests import repository as requests
from services.privacy_api.requests.service import ExportGone, add_months, plan_tasks
from services.privacy_api.subjects.blind_index import email_index, phone_index
from services.privacy_api.subjects.schemas import Subject


async def create(
    session: AsyncSession,
    officer: Principal,
    body: DisclosureCreate,
    *,
    now: datetime,
    caller: Caller,
) -> Disclosure:
    received_at = body.received_at or now
    if received_at > now:
        raise ValidationFailed.for_field("received_at", "cannot be in the future")
    disclosure = Disclosure(
        authority=body.authority.value,
        authority_name=body.authority_name,
        authority_reference=body.authority_reference,
        legal_basis=body.legal_basis,
        requested_data=body.requested_data,
        subject_account_id=body.subject.account_id,
        subject_email=body.subject.email,
        subject_phone=body.subject.phone,
        categories=[c.value for c in body.categories],
        received_at=received_at,
        powers_verified_by=officer.subject,
        powers_verification=body.powers_verification,
        powers_verified_at=now,
        decision=DisclosureDecision.PENDING.value,
        created_by=officer.subject,
    )
    await repository.add(session, disclosure)
    await audit.record(
        session,
        actor=officer,
        action="disclosure.registered",
        object_type="disclosure",
        object_id=disclosure.id,
        at=now,
        details={"authority": disclosure.authority, "categories": disclosure.categories},
        http_request_id=caller.request_id,
    )
    return disclosure


async def get(session: AsyncSession, disclosure_id: uuid.UUID) -> Disclosure:
    disclosure = await repository.get(session, disclosure_id)
    if disclosure is None:
        raise NotFound("no disclosure with this id")
    return disclosure


async def decide(
    session: AsyncSession,
    app: Collaborators,
    officer: Principal,
    disclosure_id: uuid.UUID,
    body: DisclosureDecide,
    caller: Caller,
) -> Disclosure:
    disclosure = await get(session, disclosure_id)
    if disclosure.decision != DisclosureDecision.PENDING.value:
        raise Conflict(f"the disclosure was {disclosure.decision} already")
    now = app.now()
    disclosure.decision = body.decision
    disclosure.decision_reason = body.reason
    disclosure.decided_by = officer.subject
    disclosure.decided_at = now
    if body.decision == DisclosureDecision.APPROVED.value:
        key = app.settings.blind_index_key
        request = PrivacyRequest(
            type=RequestType.ACCESS.value,
            source=RequestSource.DISCLOSURE.value,
            status=RequestStatus.VERIFIED.value,
            account_id=disclosure.subject_account_id,
            email=disclosure.subject_email,
            email_index=email_index(key, disclosure.subject_email),
            phone=disclosure.subject_phone,
            phone_index=phone_index(key, disclosure.subject_phone),
            categories=list(disclosure.categories),
            disclosure_id=disclosure.id,
            received_at=disclosure.received_at,
            due_at=add_months(disclosure.received_at, 1),
            verified_at=now,
            verification_method=VerificationMethod.AUTHORITY_POWERS.value,
            verification_note=disclosure.powers_verification,
            verified_by=disclosure.powers_verified_by,
            created_by=officer.subject,
            code_attempts=0,
        )
        await requests.add(session, request)
        await requests.add_tasks(session, plan_tasks(request, now))
    await session.flush()
    await audit.record(
        session,
        actor=officer,
        action=f"disclosure.{body.decision}",
        object_type="disclosure",
        object_id=disclosure.id,
        at=now,
        details={"reason": body.reason},
        http_request_id=caller.request_id,
    )
    return disclosure


async def export_path(
    session: AsyncSession,
    app: Collaborators,
    officer: Principal,
    disclosure_id: uuid.UUID,
    caller: Caller,
) -> Path:
    disclosure = await get(session, disclosure_id)
    request = (await repository.export_requests(session, [disclosure.id])).get(disclosure.id)
    if request is None:
        raise NotFound("this disclosure was not approved, so it has no export")
    if request.status in requests.WORKING:
        raise Conflict("the export is not ready yet")
    if request.export_file is None:
        if request.export_purged_at is not None:
            raise ExportGone("the export was deleted after its retention period")
        raise NotFound(f"the export request ended {request.status}: {request.failure_reason}")
    path = app.settings.exports_path / request.export_file
    if not path.is_file():
        raise ExportGone("the export is no longer available")
    await audit.record(
        session,
        actor=officer,
        action="disclosure.export_downloaded",
        object_type="disclosure",
        object_id=disclosure.id,
        at=app.now(),
        http_request_id=caller.request_id,
    )
    return path


def to_read(disclosure: Disclosure, request: PrivacyRequest | None) -> DisclosureRead:
    return DisclosureRead(
        id=disclosure.id,
        authority=Authority(disclosure.authority),
        authority_name=disclosure.authority_name,
        authority_reference=disclosure.authority_reference,
        legal_basis=disclosure.legal_basis,
        requested_data=disclosure.requested_data,
        subject=Subject(
            account_id=disclosure.subject_account_id,
            email=disclosure.subject_email,
            phone=disclosure.subject_phone,
        ),
        categories=disclosure.categories,
        received_at=disclosure.received_at,
        powers_verified_by=disclosure.powers_verified_by,
        powers_verification=disclosure.powers_verification,
        powers_verified_at=disclosure.powers_verified_at,
        decision=DisclosureDecision(disclosure.decision),
        decision_reason=disclosure.decision_reason,
        decided_by=disclosure.decided_by,
        decided_at=disclosure.decided_at,
        export_request_id=request.id if request else None,
        export_status=RequestStatus(request.status) if request else None,
        export_available=bool(request and request.export_file),
        created_by=disclosure.created_by,
    )
