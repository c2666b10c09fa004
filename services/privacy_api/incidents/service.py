"""Breach-register rules: the AP deadline is 72 hours after awareness (AVG art. 33(1)); a high
risk also means telling the people involved, or recording why not (art. 34)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.auth import Principal
from libs.common.errors import Conflict, NotFound, ValidationFailed
from services.privacy_api.audit import service as audit
from services.privacy_api.context import Caller
from services.privacy_api.incidents import repository
from services.privacy_api.incidents.schemas import IncidentCreate, IncidentRead, IncidentUpdate
from services.privacy_api.models import Incident, IncidentRisk

AP_DEADLINE = timedelta(hours=72)


def _not_future(field: str, value: datetime | None, now: datetime) -> None:
    if value is not None and value > now:
        raise ValidationFailed.for_field(field, "cannot be in the future")


async def create(
    session: AsyncSession,
    officer: Principal,
    body: IncidentCreate,
    *,
    now: datetime,
    caller: Caller,
) -> Incident:
    _not_future("became_aware_at", body.became_aware_at, now)
    _not_future("occurred_at", body.occurred_at, now)
    if body.occurred_at is not None and body.occurred_at > body.became_aware_at:
        raise ValidationFailed.for_field("occurred_at", "after the time of awareness")
    incident = Incident(
        title=body.title,
        description=body.description,
        occurred_at=body.occurred_at,
        became_aware_at=body.became_aware_at,
        ap_deadline=body.became_aware_at + AP_DEADLINE,
        categories=[c.value for c in body.categories],
        subjects_count=body.subjects_count,
        risk=body.risk.value,
        risk_assessment=body.risk_assessment,
        measures=body.measures,
        created_by=officer.subject,
    )
    await repository.add(session, incident)
    await audit.record(
        session,
        actor=officer,
        action="incident.registered",
        object_type="incident",
        object_id=incident.id,
        at=now,
        details={"risk": incident.risk, "subjects_count": incident.subjects_count},
        http_request_id=caller.request_id,
    )
    return incident


async def get(session: AsyncSession, incident_id: uuid.UUID) -> Incident:
    incident = await repository.get(session, incident_id)
    if incident is None:
        raise NotFound("no incident with this id")
    return incident


async def update(
    session: AsyncSession,
    officer: Principal,
    incident_id: uuid.UUID,
    body: IncidentUpdate,
    *,
    now: datetime,
    caller: Caller,
) -> Incident:
    incident = await get(session, incident_id)
    if incident.closed_at is not None:
        raise Conflict("the incident is closed")
    changes = body.model_dump(exclude_unset=True)
    for field in ("ap_notified_at", "subjects_notified_at"):
        _not_future(field, changes.get(field), now)
        value = changes.get(field)
        if value is not None and value < incident.became_aware_at:
            raise ValidationFailed.for_field(field, "before the time of awareness")
    closing = changes.pop("closed", None)
    for field, value in changes.items():
        if field == "categories" and value is not None:
            value = [str(c) for c in value]
        elif field == "risk" and value is not None:
            value = IncidentRisk(value).value
        setattr(incident, field, value)
    if closing:
        _check_can_close(incident)
        incident.closed_at = now
    await session.flush()
    await audit.record(
        session,
        actor=officer,
        action="incident.closed" if closing else "incident.updated",
        object_type="incident",
        object_id=incident.id,
        at=now,
        details={"fields": sorted(changes)},
        http_request_id=caller.request_id,
    )
    return incident


def _check_can_close(incident: Incident) -> None:
    if incident.risk == IncidentRisk.UNASSESSED.value:
        raise ValidationFailed.for_field("risk", "assess the risk before closing")
    if incident.risk != IncidentRisk.UNLIKELY.value and incident.ap_notified_at is None:
        raise ValidationFailed.for_field("ap_notified_at", "notify the AP before closing")
    if incident.risk == IncidentRisk.UNLIKELY.value and not incident.risk_assessment:
        raise ValidationFailed.for_field(
            "risk_assessment", "document why no notification is needed (art. 33(5))"
        )
    if (
        incident.risk == IncidentRisk.HIGH_RISK.value
        and incident.subjects_notified_at is None
        and not incident.subjects_not_notified_reason
    ):
        raise ValidationFailed.for_field(
            "subjects_notified_at", "tell the people involved, or record why not (art. 34(3))"
        )


def to_read(incident: Incident, now: datetime) -> IncidentRead:
    required = incident.risk != IncidentRisk.UNLIKELY.value
    return IncidentRead(
        id=incident.id,
        title=incident.title,
        description=incident.description,
        occurred_at=incident.occurred_at,
        became_aware_at=incident.became_aware_at,
        ap_deadline=incident.ap_deadline,
        ap_notification_required=required,
        is_overdue=required and incident.ap_notified_at is None and incident.ap_deadline < now,
        categories=incident.categories,
        subjects_count=incident.subjects_count,
        risk=IncidentRisk(incident.risk),
        risk_assessment=incident.risk_assessment,
        measures=incident.measures,
        ap_notified_at=incident.ap_notified_at,
        ap_reference=incident.ap_reference,
        subjects_notified_at=incident.subjects_notified_at,
        subjects_not_notified_reason=incident.subjects_not_notified_reason,
        closed_at=incident.closed_at,
        created_by=incident.created_by,
        created_at=incident.created_at,
    )
