"""Closed privacy requests keep the requester's personal data two years (the register: proof of
handling), then the deadlines run clears all of it: contact details, the objection's grounds,
the officer's reasons, the services' answers."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import select, update

from services.privacy_api.context import collaborators_of
from services.privacy_api.deadlines import run_deadlines
from services.privacy_api.models import Objection, PrivacyRequest, PrivacyTask
from tests.support.privacy_harness import Privacy

GROUNDS = "I care for my sister, who is hiding from a stalker at my address."


async def _stored(privacy: Privacy, request_id: str) -> tuple[PrivacyRequest, Objection | None]:
    async with privacy.app.state.database.session() as session:
        request = await session.get(PrivacyRequest, uuid.UUID(request_id))
        objection = await session.scalar(
            select(Objection).where(Objection.privacy_request_id == uuid.UUID(request_id))
        )
    assert request is not None
    return request, objection


async def test_objection_grounds_and_reasons_go_two_years_after_closing_not_before(
    privacy: Privacy,
) -> None:
    old, _ = await privacy.request_by_email("piet@example.nl", type="objection", grounds=GROUNDS)
    account = privacy.downstreams.identity.add_account(email="owner@example.nl")
    refused = await privacy.request_as_account(account, type="access")
    rejected = await privacy.client.post(
        f"/v1/privacy/requests/{refused['id']}/reject",
        json={"reason": "Manifestly excessive: the fifth identical request from Jan this week."},
        headers=privacy.officer(),
    )
    assert rejected.status_code == 200
    await privacy.drain()
    assert (await privacy.get_request(old["id"]))["status"] == "completed"
    privacy.clock.advance(timedelta(days=700))
    recent, _ = await privacy.request_by_email("kees@example.nl", type="objection", grounds=GROUNDS)
    await privacy.drain()
    privacy.clock.advance(timedelta(days=31))  # the first two closed 731 days ago

    report = await run_deadlines(collaborators_of(privacy.app.state))

    assert report.requests_anonymised == 2
    request, objection = await _stored(privacy, old["id"])
    assert request.status == "completed"
    assert (request.email, request.email_index, request.grounds) == (None, None, None)
    assert objection is not None
    assert objection.grounds is None
    assert objection.email_index is not None  # the objection itself is still honoured
    refused_row, _ = await _stored(privacy, refused["id"])
    assert (refused_row.account_id, refused_row.rejection_reason) == (None, None)
    request, objection = await _stored(privacy, recent["id"])
    assert request.email == "kees@example.nl"
    assert request.grounds == GROUNDS
    assert objection is not None
    assert objection.grounds == GROUNDS


async def test_anonymising_clears_every_annotated_column_of_the_request_and_its_tasks(
    privacy: Privacy,
) -> None:
    account = privacy.downstreams.identity.add_account(email="owner@example.nl")
    privacy.downstreams.take_down("shipping")
    created = await privacy.request_as_account(account, type="erasure")
    async with privacy.app.state.database.session() as session:
        request = await session.get(PrivacyRequest, uuid.UUID(created["id"]))
        assert request is not None
        request.status = "failed"
        request.completed_at = privacy.clock.now()
        request.failure_reason = "shipping refused: recipient Jan Jansen has an open claim"
        request.extension_reason = "Jan Jansen's shipments span three carriers"
        request.verification_note = "Jan showed his passport at the desk"
        await session.execute(
            update(PrivacyTask)
            .where(PrivacyTask.request_id == request.id)
            .values(status="failed", last_error="422: recipient Jan Jansen has an open claim")
        )
        await session.commit()
    privacy.clock.advance(timedelta(days=731))

    await run_deadlines(collaborators_of(privacy.app.state))

    request, _ = await _stored(privacy, created["id"])
    assert request.failure_reason is None
    assert request.extension_reason is None
    assert request.verification_note is None
    assert request.access_token_hash is None
    assert request.anonymised_at is not None
    async with privacy.app.state.database.session() as session:
        errors = (
            await session.scalars(
                select(PrivacyTask.last_error).where(PrivacyTask.request_id == request.id)
            )
        ).all()
    assert errors
    assert all(error is None for error in errors)
