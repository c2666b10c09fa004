"""The breach register: the 72-hour AP deadline, overdue flagging, closing rules."""

from __future__ import annotations

from datetime import timedelta

from libs.common.auth import Role
from tests.support.privacy_harness import Privacy
from tests.support.tokens import bearer


def breach(privacy: Privacy, **changes: object) -> dict[str, object]:
    return {
        "title": "Label PDFs readable without login",
        "description": "A misconfigured bucket served label PDFs with recipient addresses.",
        "became_aware_at": (privacy.clock.now() - timedelta(hours=2)).isoformat(),
        "categories": ["recipient_contact", "recipient_address"],
        "subjects_count": 1200,
        **changes,
    }


async def test_incident_gets_the_72_hour_deadline_and_is_flagged_when_missed(
    privacy: Privacy,
) -> None:
    officer = privacy.officer()
    created = await privacy.client.post(
        "/v1/privacy/incidents", json=breach(privacy), headers=officer
    )
    assert created.status_code == 201, created.text
    incident = created.json()
    assert incident["ap_deadline"] == "2026-11-28T07:00:00Z"
    assert incident["ap_notification_required"] is True
    assert incident["is_overdue"] is False
    privacy.clock.advance(timedelta(hours=71))
    overdue = await privacy.client.get(
        "/v1/privacy/incidents", params={"overdue": "true"}, headers=officer
    )
    assert [i["id"] for i in overdue.json()["data"]] == [incident["id"]]
    assert overdue.json()["data"][0]["is_overdue"] is True
    notified = await privacy.client.patch(
        f"/v1/privacy/incidents/{incident['id']}",
        json={"ap_notified_at": privacy.clock.now().isoformat(), "ap_reference": "AP-2026-1"},
        headers=officer,
    )
    assert notified.json()["is_overdue"] is False
    after = await privacy.client.get(
        "/v1/privacy/incidents", params={"overdue": "true"}, headers=officer
    )
    assert after.json()["data"] == []


async def test_an_incident_assessed_unlikely_to_harm_needs_no_ap_notification(
    privacy: Privacy,
) -> None:
    officer = privacy.officer()
    created = await privacy.client.post(
        "/v1/privacy/incidents",
        json=breach(privacy, risk="unlikely", risk_assessment="Encrypted laptop, key not lost."),
        headers=officer,
    )
    privacy.clock.advance(timedelta(days=5))
    read = await privacy.client.get(
        f"/v1/privacy/incidents/{created.json()['id']}", headers=officer
    )
    assert read.json()["ap_notification_required"] is False
    assert read.json()["is_overdue"] is False
    closed = await privacy.client.patch(
        f"/v1/privacy/incidents/{created.json()['id']}", json={"closed": True}, headers=officer
    )
    assert closed.status_code == 200
    assert closed.json()["closed_at"] is not None


async def test_closing_a_high_risk_breach_needs_both_notifications(privacy: Privacy) -> None:
    officer = privacy.officer()
    created = await privacy.client.post(
        "/v1/privacy/incidents", json=breach(privacy, risk="high_risk"), headers=officer
    )
    url = f"/v1/privacy/incidents/{created.json()['id']}"
    refused = await privacy.client.patch(url, json={"closed": True}, headers=officer)
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["field"] == "ap_notified_at"
    now = privacy.clock.now().isoformat()
    refused = await privacy.client.patch(
        url, json={"ap_notified_at": now, "closed": True}, headers=officer
    )
    assert refused.json()["errors"][0]["field"] == "subjects_notified_at"
    # The refused update changed nothing: both notifications go in with the closing.
    closed = await privacy.client.patch(
        url,
        json={"ap_notified_at": now, "subjects_notified_at": now, "closed": True},
        headers=officer,
    )
    assert closed.status_code == 200
    again = await privacy.client.patch(url, json={"measures": "more"}, headers=officer)
    assert again.status_code == 409


async def test_incident_times_are_checked(privacy: Privacy) -> None:
    officer = privacy.officer()
    future = (privacy.clock.now() + timedelta(hours=1)).isoformat()
    response = await privacy.client.post(
        "/v1/privacy/incidents", json=breach(privacy, became_aware_at=future), headers=officer
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "became_aware_at"
    response = await privacy.client.post(
        "/v1/privacy/incidents", json=breach(privacy, categories=["unknown"]), headers=officer
    )
    assert response.status_code == 422


async def test_incidents_are_for_the_privacy_officer_only(privacy: Privacy) -> None:
    account = privacy.downstreams.identity.add_account(email="shop@example.nl")
    for headers in (privacy.user(account), bearer(privacy.issuer.staff(Role.SUPPORT))):
        assert (
            await privacy.client.get("/v1/privacy/incidents", headers=headers)
        ).status_code == 403
        made = await privacy.client.post(
            "/v1/privacy/incidents", json=breach(privacy), headers=headers
        )
        assert made.status_code == 403
    audit = await privacy.client.get("/v1/privacy/audit-log", headers=privacy.user(account))
    assert audit.status_code == 403


async def test_the_location_of_a_registered_incident_answers_it(privacy: Privacy) -> None:
    officer = privacy.officer()
    created = await privacy.client.post(
        "/v1/privacy/incidents", json=breach(privacy), headers=officer
    )
    assert created.status_code == 201, created.text
    assert created.headers["location"] == f"/v1/privacy/incidents/{created.json()['id']}"
    read = await privacy.client.get(created.headers["location"], headers=officer)
    assert read.status_code == 200
    assert read.json() == created.json()
