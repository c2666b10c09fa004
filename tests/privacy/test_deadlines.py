"""The deadlines run (CronJob): overdue requests and incidents flagged and mailed to the privacy
officer, unverified requests closed, old contact details anonymised."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import select

from libs.common.app import Overrides
from libs.common.mail import SmtpMailer
from services.privacy_api.__main__ import deadlines, main
from services.privacy_api.context import collaborators_of
from services.privacy_api.deadlines import run_deadlines
from services.privacy_api.models import Incident, PrivacyRequest
from tests.support.privacy_harness import Privacy


async def test_overdue_requests_and_incidents_are_flagged_and_mailed_to_the_officer(
    privacy: Privacy,
) -> None:
    account = privacy.downstreams.identity.add_account(email="shop@example.nl")
    privacy.downstreams.take_down("shipping")  # so the request stays open
    late = await privacy.request_as_account(account, type="erasure")
    await privacy.drain()
    incident = await privacy.client.post(
        "/v1/privacy/incidents",
        json={
            "title": "Lost laptop",
            "description": "Unencrypted laptop with a customer export lost on the train.",
            "became_aware_at": privacy.clock.now().isoformat(),
            "categories": ["contact"],
            "subjects_count": 40,
            "risk": "risk",
        },
        headers=privacy.officer(),
    )
    privacy.clock.advance(timedelta(days=32))
    report = await run_deadlines(collaborators_of(privacy.app.state))
    assert [str(r.id) for r in report.overdue_requests] == [late["id"]]
    assert report.newly_overdue_requests == 1
    assert [str(i.id) for i in report.overdue_incidents] == [incident.json()["id"]]
    await privacy.worker.send_mail()
    mail = (await privacy.inbox.wait_for("privacy@parcelpro.nl"))[-1]
    body = privacy.inbox.body(mail)
    assert late["id"] in body
    assert "Lost laptop" in body
    async with privacy.app.state.database.session() as session:
        request = await session.get(PrivacyRequest, uuid.UUID(late["id"]))
        flagged_incident = await session.scalar(select(Incident))
    assert request is not None
    assert request.overdue_flagged_at is not None
    assert flagged_incident is not None
    assert flagged_incident.overdue_flagged_at is not None
    again = await run_deadlines(collaborators_of(privacy.app.state))
    assert again.newly_overdue_requests == 0  # flagged once, still listed
    assert len(again.overdue_requests) == 1


async def test_unverified_requests_are_closed_and_old_ones_lose_contact_details(
    privacy: Privacy,
) -> None:
    response = await privacy.client.post(
        "/v1/privacy/requests", json={"type": "access", "email": "piet@example.nl"}
    )
    unverified = response.json()
    account = privacy.downstreams.identity.add_account(email="shop@example.nl")
    done = await privacy.request_as_account(account, type="restriction")
    await privacy.drain()
    privacy.clock.advance(timedelta(hours=1))
    report = await run_deadlines(collaborators_of(privacy.app.state))
    assert report.unverified_closed == 1
    closed = await privacy.get_request(unverified["id"])
    assert closed["status"] == "rejected"
    privacy.clock.advance(timedelta(days=731))
    report = await run_deadlines(collaborators_of(privacy.app.state))
    assert report.requests_anonymised == 2
    old = await privacy.get_request(done["id"])
    assert old["email"] is None
    assert old["account_id"] is None
    assert old["status"] == "completed"


async def test_deadlines_command_runs_against_the_service_database(privacy: Privacy) -> None:
    account = privacy.downstreams.identity.add_account(email="shop@example.nl")
    await privacy.request_as_account(account, type="access")
    privacy.downstreams.take_down("shipping")
    await privacy.drain()
    privacy.clock.advance(timedelta(days=40))
    smtp = privacy.app.state.mailer
    overrides = Overrides(
        database=privacy.app.state.database,
        clock=privacy.clock,
        mailer=SmtpMailer(f"smtp://{smtp.hostname}:{smtp.port}", sender=privacy.settings.mail_from),
        http_transport=privacy.downstreams.transport,
    )
    assert await deadlines(privacy.settings, overrides) == 0
    mail = (await privacy.inbox.wait_for("privacy@parcelpro.nl"))[-1]
    assert "Overdue privacy requests: 1" in privacy.inbox.body(mail)


def test_cli_offers_worker_and_deadlines(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "worker" in out
    assert "deadlines" in out
