"""Consent rules: giving needs the version of the text agreed to; withdrawing needs nothing
more than giving did (AVG art. 7(3)); every change is kept with time, source and version."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.exc import StaleDataError

from libs.common.errors import ValidationFailed
from libs.common.pagination import PageParams
from services.privacy_api.consents import repository
from services.privacy_api.consents.schemas import (
    ConsentDecision,
    ConsentRead,
    ConsentsRead,
    ConsentTextRead,
    EffectiveConsents,
)
from services.privacy_api.models import Consent, ConsentEvent, ConsentPurpose, ConsentSource
from services.privacy_api.register.service import consent_text, current_consent_text
from services.privacy_api.subjects import repository as subjects
from services.privacy_api.subjects.repository import SubjectKeys


async def read(session: AsyncSession, keys: SubjectKeys) -> ConsentsRead:
    by_purpose = {c.purpose: c for c in await repository.current(session, keys)}
    restricted, objected = await subjects.is_restricted(session, keys)
    consents = []
    for purpose in ConsentPurpose:
        row = by_purpose.get(purpose.value)
        text = current_consent_text(purpose.value)
        consents.append(
            ConsentRead(
                purpose=purpose,
                granted=bool(row and row.granted),
                text_version=row.text_version if row else None,
                source=ConsentSource(row.source) if row else None,
                changed_at=row.changed_at if row else None,
                current_text=ConsentTextRead(version=text.version, text=text.text),
            )
        )
    return ConsentsRead(consents=consents, objection=objected, restricted=restricted)


async def update(
    session: AsyncSession,
    keys: SubjectKeys,
    decisions: Mapping[ConsentPurpose, ConsentDecision],
    *,
    source: ConsentSource,
    now: datetime,
    privacy_request_id: uuid.UUID | None = None,
) -> list[ConsentPurpose]:
    """Apply the decisions that change something; returns the purposes that changed."""
    if source is ConsentSource.OBJECTION_REQUEST and privacy_request_id is None:
        raise ValidationFailed.for_field(
            "source", "an objection is made with a privacy request of type objection"
        )
    for purpose, decision in decisions.items():
        if decision.granted:
            if decision.text_version is None:
                raise ValidationFailed.for_field(
                    f"{purpose.value}.text_version",
                    "say which version of the consent text the person agreed to",
                )
            if consent_text(purpose.value, decision.text_version) is None:
                raise ValidationFailed.for_field(
                    f"{purpose.value}.text_version", "no consent text with this version"
                )
    try:
        async with session.begin_nested():
            return await _apply(session, keys, decisions, source, now, privacy_request_id)
    except (IntegrityError, StaleDataError):
        # A concurrent first decision for the same purpose stored its row meanwhile (two
        # clicks, two tabs), or an erasure removed the row read: decide again against the rows
        # there are now instead of failing.
        async with session.begin_nested():
            return await _apply(session, keys, decisions, source, now, privacy_request_id)


async def _apply(
    session: AsyncSession,
    keys: SubjectKeys,
    decisions: Mapping[ConsentPurpose, ConsentDecision],
    source: ConsentSource,
    now: datetime,
    privacy_request_id: uuid.UUID | None,
) -> list[ConsentPurpose]:
    rows = await repository.current(session, keys, for_update=True)
    by_purpose = {c.purpose: c for c in rows}
    changed: list[ConsentPurpose] = []
    for purpose, decision in decisions.items():
        row = by_purpose.get(purpose.value)
        version = decision.text_version if decision.granted else None
        if row is not None and row.granted == decision.granted and row.text_version == version:
            continue
        if row is None:
            row = Consent(
                account_id=keys.account_id,
                email_index=None if keys.account_id is not None else keys.email_index,
                purpose=purpose.value,
            )
        row.granted = decision.granted
        row.text_version = version
        row.source = source.value
        row.changed_at = now
        event = ConsentEvent(
            account_id=row.account_id,
            email_index=row.email_index,
            purpose=purpose.value,
            granted=decision.granted,
            text_version=version,
            source=source.value,
            recorded_at=now,
            privacy_request_id=privacy_request_id,
        )
        await repository.save(session, row, event)
        changed.append(purpose)
    return changed


async def history(
    session: AsyncSession, account_id: uuid.UUID, params: PageParams
) -> tuple[Sequence[ConsentEvent], str | None]:
    return await repository.history_page(session, account_id, params)


async def effective(session: AsyncSession, keys: SubjectKeys) -> EffectiveConsents:
    """Consent as other services must apply it: a restriction or objection overrides it."""
    state = await read(session, keys)
    granted = {c.purpose: c.granted for c in state.consents}
    allowed = not state.restricted
    return EffectiveConsents(
        profiling=allowed and not state.objection and granted[ConsentPurpose.PROFILING],
        personalised_ads=allowed
        and not state.objection
        and granted[ConsentPurpose.PERSONALISED_ADS],
        analytics_cookies=allowed and granted[ConsentPurpose.ANALYTICS_COOKIES],
        objection=state.objection,
    )
