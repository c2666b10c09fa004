"""Privacy's own answers to the data-subject API: export, erase, restrict, rectify and the
objection's local effects. Each answer is stored per ``request_id``, so a repeat gives the
same answer and changes nothing more (decision 0004)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.errors import ValidationFailed
from libs.common.pii import export_meta, retained_fields
from services.privacy_api.consents import service as consents
from services.privacy_api.consents.schemas import ConsentDecision
from services.privacy_api.models import (
    Base,
    ConsentPurpose,
    ConsentSource,
    Objection,
    RestrictionBasis,
    ServiceName,
)
from services.privacy_api.subjects import repository
from services.privacy_api.subjects.blind_index import email_index, phone_index
from services.privacy_api.subjects.repository import SubjectKeys
from services.privacy_api.subjects.schemas import Subject

SERVICE = ServiceName.PRIVACY.value


def keys_for(subject: Subject, blind_index_key: str) -> SubjectKeys:
    return SubjectKeys(
        account_id=subject.account_id,
        email_index=email_index(blind_index_key, subject.email),
        phone_index=phone_index(blind_index_key, subject.phone),
    )


async def export_lines(session: AsyncSession, keys: SubjectKeys) -> AsyncIterator[bytes]:
    """NDJSON lines ``{"category", "table", "record"}`` of everything privacy holds, each
    table's preceded by its ``export_meta`` line, as the other services write them."""
    previous: str | None = None
    async for category, table, record in repository.stream_records(session, keys):
        line = orjson.dumps({"category": category, "table": table, "record": record}) + b"\n"
        if table != previous:
            line = export_meta(Base.metadata.tables[table]) + line
            previous = table
        yield line


async def _once(
    session: AsyncSession,
    request_id: uuid.UUID,
    action: str,
    now: datetime,
    apply: Any,
) -> dict[str, Any]:
    stored = await repository.stored_answer(session, request_id, action)
    if stored is not None:
        return stored
    answer: dict[str, Any] = await apply()
    await repository.store_answer(session, request_id, action, answer, now)
    return answer


async def erase(
    session: AsyncSession, keys: SubjectKeys, *, request_id: uuid.UUID, now: datetime
) -> dict[str, Any]:
    async def apply() -> dict[str, Any]:
        erased = await repository.erase(session, keys)
        kept = [
            field.as_dict() for table in repository.RETAINING for field in retained_fields(table)
        ]
        return {"service": SERVICE, "erased": erased, "kept": kept}

    return await _once(session, request_id, "erase", now, apply)


async def restrict(
    session: AsyncSession,
    keys: SubjectKeys,
    *,
    request_id: uuid.UUID,
    restricted: bool,
    basis: RestrictionBasis,
    now: datetime,
) -> dict[str, Any]:
    async def apply() -> dict[str, Any]:
        written = await repository.set_restriction(
            session,
            keys,
            basis=basis.value,
            restricted=restricted,
            request_id=request_id,
            now=now,
        )
        return {"service": SERVICE, "restricted": {"subject_restriction": written}}

    return await _once(session, request_id, f"restrict:{basis.value}:{restricted}", now, apply)


async def rectify(changes: dict[str, Any]) -> dict[str, Any]:
    """Privacy holds nothing a subject corrects through rectification: its requests are the
    record of what was asked, and consents change through ``PUT /v1/privacy/consents``."""
    field = next(iter(changes), "changes")
    raise ValidationFailed.for_field(
        f"changes.{field}",
        "privacy holds no correctable data under this name; consents change through "
        "PUT /v1/privacy/consents",
    )


async def object_to_processing(
    session: AsyncSession,
    keys: SubjectKeys,
    *,
    request_id: uuid.UUID,
    grounds: str | None,
    now: datetime,
) -> dict[str, Any]:
    """AVG art. 21: withdraw profiling and personalised advertising, record the objection and
    restrict privacy's own processing on the basis ``objection``."""

    async def apply() -> dict[str, Any]:
        withdrawn = await consents.update(
            session,
            keys,
            {
                ConsentPurpose.PROFILING: ConsentDecision(granted=False),
                ConsentPurpose.PERSONALISED_ADS: ConsentDecision(granted=False),
            },
            source=ConsentSource.OBJECTION_REQUEST,
            now=now,
            privacy_request_id=request_id,
        )
        session.add(
            Objection(
                account_id=keys.account_id,
                email_index=keys.email_index,
                grounds=grounds,
                privacy_request_id=request_id,
                recorded_at=now,
            )
        )
        written = await repository.set_restriction(
            session,
            keys,
            basis=RestrictionBasis.OBJECTION.value,
            restricted=True,
            request_id=request_id,
            now=now,
        )
        return {
            "service": SERVICE,
            "withdrawn": [purpose.value for purpose in withdrawn],
            "objection_recorded": True,
            "restricted": {"subject_restriction": written},
        }

    return await _once(session, request_id, "object", now, apply)
