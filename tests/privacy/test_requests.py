"""Privacy requests: who may file them, verification by mailed code, visibility, deadlines and
the privacy officer's actions."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import select

from libs.common.auth import Role
from services.privacy_api.models import AuditLog, PrivacyRequest
from tests.support.privacy_harness import Privacy, mailed_code
from tests.support.tokens import bearer


async def test_account_holder_request_is_verified_at_once_with_a_task_per_service(
    privacy: Privacy,
) -> None:
    account = privacy.downstreams.identity.add_account(email="shop@example.nl")
    created = await privacy.request_as_account(account, type="erasure")
    assert created["status"] == "verified"
    assert created["source"] == "account"
    assert created["account_id"] == str(account)
    assert created["email"] == "shop@example.nl"  # from identity's account route
    assert created["verification_method"] == "account_login"
    assert created["access_token"] is None
    assert created["due_at"] == "2026-12-25T09:00:00Z"  # one calendar month
    assert sorted((t["service"], t["action"]) for t in created["tasks"]) == [
        ("identity", "erase"),
        ("privacy", "erase"),
        ("shipping", "erase"),
    ]


async def test_due_date_is_one_calendar_month_clamped_to_the_month_end(
    privacy: Privacy,
) -> None:
    privacy.clock.set(privacy.clock.now().replace(month=1, day=31))
    account = privacy.downstreams.identity.add_account(email="shop@example.nl")
    created = await privacy.request_as_account(account, type="access")
    assert created["due_at"] == "2026-02-28T09:00:00Z"


async def test_request_without_account_mails_a_code_and_reveals_nothing(privacy: Privacy) -> None:
    privacy.downstreams.shipping.add_shipment(recipient_email="known@example.nl")
    answers = []
    for email in ("known@example.nl", "unknown@example.nl"):
        response = await privacy.client.post(
            "/v1/privacy/requests", json={"type": "access", "email": email}
        )
        assert response.status_code == 201
        answers.append(response.json())
        message = (await privacy.inbox.wait_for(email))[0]
        assert len(mailed_code(message)) == 6
    shapes = [
        {k: v for k, v in a.items() if k not in {"id", "email", "access_token"}} for a in answers
    ]
    assert shapes[0] == shapes[1]
    assert answers[0]["status"] == "pending_verification"
    assert answers[0]["tasks"] == []


async def test_code_is_stored_hashed_and_verification_starts_the_tasks(privacy: Privacy) -> None:
    created, token = await privacy.request_by_email("piet@example.nl", type="erasure")
    assert created["status"] == "verified"
    assert created["verification_method"] == "email_code"
    assert len(created["tasks"]) == 3
    async with privacy.app.state.database.session() as session:
        row = await session.get(PrivacyRequest, uuid.UUID(created["id"]))
    assert row is not None
    assert row.code_hash is None  # gone once used
    assert row.access_token_hash is not None
    assert token not in row.access_token_hash


async def test_wrong_code_counts_and_the_sixth_try_is_refused(privacy: Privacy) -> None:
    response = await privacy.client.post(
        "/v1/privacy/requests", json={"type": "access", "email": "piet@example.nl"}
    )
    created = response.json()
    headers = {"X-Privacy-Request-Token": created["access_token"]}
    code = mailed_code((await privacy.inbox.wait_for("piet@example.nl"))[0])
    wrong = "000000" if code != "000000" else "111111"
    for left in (4, 3, 2, 1, 0):
        answer = await privacy.client.post(
            f"/v1/privacy/requests/{created['id']}/verify", json={"code": wrong}, headers=headers
        )
        assert answer.status_code == 422
        assert answer.json()["errors"][0]["field"] == "code"
        assert f"{left} tries left" in answer.json()["detail"]
    final = await privacy.client.post(
        f"/v1/privacy/requests/{created['id']}/verify", json={"code": code}, headers=headers
    )
    assert final.status_code == 409
    assert "too many" in final.json()["detail"]


async def test_code_expires_after_30_minutes(privacy: Privacy) -> None:
    response = await privacy.client.post(
        "/v1/privacy/requests", json={"type": "access", "email": "piet@example.nl"}
    )
    created = response.json()
    code = mailed_code((await privacy.inbox.wait_for("piet@example.nl"))[0])
    privacy.clock.advance(timedelta(minutes=31))
    answer = await privacy.client.post(
        f"/v1/privacy/requests/{created['id']}/verify",
        json={"code": code},
        headers={"X-Privacy-Request-Token": created["access_token"]},
    )
    assert answer.status_code == 409
    assert "expired" in answer.json()["detail"]


async def test_verification_needs_the_request_token(privacy: Privacy) -> None:
    response = await privacy.client.post(
        "/v1/privacy/requests", json={"type": "access", "email": "piet@example.nl"}
    )
    created = response.json()
    code = mailed_code((await privacy.inbox.wait_for("piet@example.nl"))[0])
    url = f"/v1/privacy/requests/{created['id']}/verify"
    missing = await privacy.client.post(url, json={"code": code})
    assert missing.status_code == 401
    wrong = await privacy.client.post(
        url, json={"code": code}, headers={"X-Privacy-Request-Token": "not-the-token"}
    )
    assert wrong.status_code == 404


async def test_anonymous_requester_follows_the_request_with_the_token_only(
    privacy: Privacy,
) -> None:
    created, token = await privacy.request_by_email("piet@example.nl", type="access")
    url = f"/v1/privacy/requests/{created['id']}"
    assert (
        await privacy.client.get(url, headers={"X-Privacy-Request-Token": token})
    ).status_code == 200
    assert (await privacy.client.get(url)).status_code == 401
    other = await privacy.client.get(url, headers={"X-Privacy-Request-Token": "x" * 43})
    assert other.status_code == 404


async def test_another_accounts_request_is_404(privacy: Privacy) -> None:
    owner = privacy.downstreams.identity.add_account(email="owner@example.nl")
    created = await privacy.request_as_account(owner, type="access")
    stranger = privacy.downstreams.identity.add_account(email="stranger@example.nl")
    url = f"/v1/privacy/requests/{created['id']}"
    assert (await privacy.client.get(url, headers=privacy.user(stranger))).status_code == 404
    assert (
        await privacy.client.get(url + "/export", headers=privacy.user(stranger))
    ).status_code == 404
    listed = await privacy.client.get("/v1/privacy/requests", headers=privacy.user(stranger))
    assert listed.json()["data"] == []


async def test_api_keys_support_staff_and_services_cannot_file_or_read_requests(
    privacy: Privacy,
) -> None:
    account = privacy.downstreams.identity.add_account(email="owner@example.nl")
    created = await privacy.request_as_account(account, type="access")
    api_key = bearer(privacy.issuer.api_keys.issue(account))
    support = bearer(privacy.issuer.staff(Role.SUPPORT))
    for headers in (api_key, support):
        made = await privacy.client.post(
            "/v1/privacy/requests", json={"type": "access"}, headers=headers
        )
        assert made.status_code == 403
        seen = await privacy.client.get(f"/v1/privacy/requests/{created['id']}", headers=headers)
        assert seen.status_code == 403
        listed = await privacy.client.get("/v1/privacy/requests", headers=headers)
        assert listed.status_code == 403
    service = bearer(privacy.issuer.service("shipping_api"))
    made = await privacy.client.post(
        "/v1/privacy/requests", json={"type": "access"}, headers=service
    )
    assert made.status_code == 401


async def test_body_fields_are_checked_per_requester_and_type(privacy: Privacy) -> None:
    account = privacy.downstreams.identity.add_account(email="owner@example.nl")
    cases = [
        ({"type": "access", "email": "x@example.nl"}, privacy.user(account), "email"),
        ({"type": "access", "role": "admin"}, privacy.user(account), "role"),
        (
            {"type": "access", "changes": {"identity": {"street": "X"}}},
            privacy.user(account),
            "changes",
        ),
        ({"type": "rectification"}, privacy.user(account), "changes"),
        ({"type": "access", "grounds": "why"}, privacy.user(account), "grounds"),
        ({"type": "forget-me"}, privacy.user(account), "type"),
        ({"type": "access"}, {}, "email"),
        ({"type": "access", "email": "not-an-address"}, {}, "email"),
        (
            {"type": "access", "email": "x@example.nl", "verification_note": "x"},
            {},
            "verification_note",
        ),
        ({"type": "access", "email": "x@example.nl"}, privacy.officer(), "verification_note"),
    ]
    for body, headers, field in cases:
        response = await privacy.client.post("/v1/privacy/requests", json=body, headers=headers)
        assert response.status_code == 422, (body, response.text)
        fields = [error["field"] for error in response.json()["errors"]]
        assert any(f == field or f.startswith(field) for f in fields), (body, fields)


async def test_officer_enters_a_letter_verified_with_a_note(privacy: Privacy) -> None:
    received = privacy.clock.now() - timedelta(days=3)
    response = await privacy.client.post(
        "/v1/privacy/requests",
        json={
            "type": "access",
            "email": "letter@example.nl",
            "received_at": received.isoformat(),
            "verification_note": "Passport copy checked, BSN blacked out, copy shredded.",
        },
        headers=privacy.officer(),
    )
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["status"] == "verified"
    assert created["source"] == "letter"
    assert created["verification_method"] == "id_document"
    assert created["due_at"] == "2026-12-22T09:00:00Z"  # from receipt of the letter
    async with privacy.app.state.database.session() as session:
        entries = (
            await session.scalars(select(AuditLog).where(AuditLog.object_id == created["id"]))
        ).all()
    assert [e.action for e in entries] == ["privacy_request.entered_from_letter"]


async def test_officer_lists_all_and_the_overdue(privacy: Privacy) -> None:
    account = privacy.downstreams.identity.add_account(email="owner@example.nl")
    first = await privacy.request_as_account(account, type="access")
    privacy.clock.advance(timedelta(days=20))
    second = await privacy.request_as_account(account, type="erasure")
    privacy.clock.advance(timedelta(days=15))  # the first is past its month now
    everything = await privacy.client.get("/v1/privacy/requests", headers=privacy.officer())
    ids = [r["id"] for r in everything.json()["data"]]
    assert first["id"] in ids
    assert second["id"] in ids
    overdue = await privacy.client.get(
        "/v1/privacy/requests", params={"overdue": "true"}, headers=privacy.officer()
    )
    assert [r["id"] for r in overdue.json()["data"]] == [first["id"]]
    assert overdue.json()["data"][0]["is_overdue"] is True
    own = await privacy.client.get("/v1/privacy/requests", headers=privacy.user(account))
    assert {r["id"] for r in own.json()["data"]} == {first["id"], second["id"]}
    not_theirs = await privacy.client.get(
        "/v1/privacy/requests", params={"overdue": "true"}, headers=privacy.user(account)
    )
    assert not_theirs.status_code == 403


async def test_officer_extends_once_and_the_subject_is_told_why(privacy: Privacy) -> None:
    account = privacy.downstreams.identity.add_account(email="owner@example.nl")
    created = await privacy.request_as_account(account, type="access")
    url = f"/v1/privacy/requests/{created['id']}/extend"
    body = {"months": 2, "reason": "Seven years of shipments to collect."}
    as_user = await privacy.client.post(url, json=body, headers=privacy.user(account))
    assert as_user.status_code == 403
    too_long = await privacy.client.post(url, json={**body, "months": 3}, headers=privacy.officer())
    assert too_long.status_code == 422
    extended = await privacy.client.post(url, json=body, headers=privacy.officer())
    assert extended.status_code == 200
    assert extended.json()["due_at"] == "2027-02-25T09:00:00Z"
    assert extended.json()["extension"]["reason"] == body["reason"]
    again = await privacy.client.post(
        url, json={"months": 1, "reason": "more"}, headers=privacy.officer()
    )
    assert again.status_code == 409
    await privacy.worker.send_mail()
    mail = (await privacy.inbox.wait_for("owner@example.nl"))[-1]
    assert "Seven years of shipments to collect." in privacy.inbox.body(mail)


async def test_extension_must_come_before_the_deadline(privacy: Privacy) -> None:
    account = privacy.downstreams.identity.add_account(email="owner@example.nl")
    created = await privacy.request_as_account(account, type="access")
    privacy.clock.advance(timedelta(days=32))
    late = await privacy.client.post(
        f"/v1/privacy/requests/{created['id']}/extend",
        json={"months": 1, "reason": "busy"},
        headers=privacy.officer(),
    )
    assert late.status_code == 409


async def test_officer_rejects_a_request_not_yet_started_and_the_subject_is_told(
    privacy: Privacy,
) -> None:
    account = privacy.downstreams.identity.add_account(email="owner@example.nl")
    created = await privacy.request_as_account(account, type="access")
    rejected = await privacy.client.post(
        f"/v1/privacy/requests/{created['id']}/reject",
        json={"reason": "Manifestly excessive: the fifth identical request this week."},
        headers=privacy.officer(),
    )
    assert rejected.status_code == 200
    assert rejected.json()["status"] == "rejected"
    assert rejected.json()["tasks"] == []
    await privacy.drain()
    body = privacy.inbox.body((await privacy.inbox.wait_for("owner@example.nl"))[-1])
    assert "Manifestly excessive" in body
    assert "Autoriteit Persoonsgegevens" in body


async def test_creation_is_rate_limited(privacy: Privacy) -> None:
    statuses = []
    for i in range(6):
        response = await privacy.client.post(
            "/v1/privacy/requests", json={"type": "access", "email": f"p{i}@example.nl"}
        )
        statuses.append(response.status_code)
    assert statuses == [201] * 5 + [429]
    assert int(response.headers["Retry-After"]) > 0


async def test_unknown_account_at_identity_is_refused(privacy: Privacy) -> None:
    response = await privacy.client.post(
        "/v1/privacy/requests", json={"type": "access"}, headers=privacy.user(uuid.uuid4())
    )
    assert response.status_code == 401


async def test_identity_down_when_filing_is_a_503_and_nothing_is_stored(privacy: Privacy) -> None:
    account = privacy.downstreams.identity.add_account(email="owner@example.nl")
    privacy.downstreams.take_down("identity")
    response = await privacy.client.post(
        "/v1/privacy/requests", json={"type": "access"}, headers=privacy.user(account)
    )
    assert response.status_code == 503
    privacy.downstreams.bring_up("identity")
    listed = await privacy.client.get("/v1/privacy/requests", headers=privacy.user(account))
    assert listed.json()["data"] == []
