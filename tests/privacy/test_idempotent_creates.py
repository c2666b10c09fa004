"""Idempotency-Key on privacy's creates (decisions 0202 and 0303): a retried request, incident or
disclosure is answered from the first response; another body is 422, a key in flight 409; the
stored answers follow the subject's export and erasure and expire."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import orjson
from sqlalchemy import func, select

from libs.common.auth import Role, ServiceScope
from libs.common.idempotency import IdempotencyState, request_fingerprint
from services.privacy_api.context import collaborators_of
from services.privacy_api.deadlines import run_deadlines
from services.privacy_api.models import (
    Disclosure,
    IdempotencyKey,
    Incident,
    PrivacyRequest,
    account_scope,
)
from tests.privacy.test_disclosures import police_request
from tests.privacy.test_incidents import breach
from tests.support.privacy_harness import Privacy
from tests.support.tokens import bearer

REQUESTS = "/v1/privacy/requests"


async def count(privacy: Privacy, model: type[Any]) -> int:
    async with privacy.app.state.database.session() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


def keyed(headers: dict[str, str], key: str) -> dict[str, str]:
    return {**headers, "Idempotency-Key": key}


def subjects_service(privacy: Privacy) -> dict[str, str]:
    return bearer(privacy.issuer.service("identity_api", [ServiceScope.SUBJECTS]))


async def test_retried_request_of_an_account_holder_is_one_request_and_one_mail(
    privacy: Privacy,
) -> None:
    account = privacy.downstreams.identity.add_account(email="shop@example.nl")
    headers = keyed(privacy.user(account), "erase-my-data-1")
    body = {"type": "access", "message": "Everything you hold, please."}
    first = await privacy.client.post(REQUESTS, json=body, headers=headers)
    assert first.status_code == 201, first.text
    # Same JSON in another key order: the same request.
    retry = await privacy.client.post(REQUESTS, json=dict(reversed(body.items())), headers=headers)
    assert retry.status_code == 201
    assert retry.json() == first.json()
    assert retry.headers["idempotent-replayed"] == "true"
    assert (
        retry.headers["location"] == first.headers["location"] == f"{REQUESTS}/{first.json()['id']}"
    )
    assert await count(privacy, PrivacyRequest) == 1
    await privacy.drain()
    # One request, so one answer in the requester's mailbox.
    assert len(await privacy.inbox.wait_for("shop@example.nl")) == 1
    mine = await privacy.client.get(REQUESTS, headers=privacy.user(account))
    assert [r["id"] for r in mine.json()["data"]] == [first.json()["id"]]


async def test_same_key_with_another_body_is_422_naming_the_header(privacy: Privacy) -> None:
    account = privacy.downstreams.identity.add_account(email="shop@example.nl")
    headers = keyed(privacy.user(account), "k-1")
    first = await privacy.client.post(REQUESTS, json={"type": "access"}, headers=headers)
    assert first.status_code == 201
    other = await privacy.client.post(REQUESTS, json={"type": "erasure"}, headers=headers)
    assert other.status_code == 422
    assert other.headers["content-type"].startswith("application/problem+json")
    assert other.json()["errors"][0]["field"] == "Idempotency-Key"
    assert await count(privacy, PrivacyRequest) == 1


async def test_same_request_while_the_first_is_in_flight_is_409(privacy: Privacy) -> None:
    account = privacy.downstreams.identity.add_account(email="shop@example.nl")
    body = {"type": "access"}
    now = privacy.clock.now()
    async with privacy.app.state.database.session() as session:
        session.add(
            IdempotencyKey(
                scope=account_scope(account),
                key="busy",
                fingerprint=request_fingerprint("POST", REQUESTS, orjson.dumps(body)),
                state=IdempotencyState.IN_FLIGHT.value,
                locked_until=now + timedelta(seconds=30),
                created_at=now,
                expires_at=now + timedelta(hours=24),
            )
        )
        await session.commit()
    headers = keyed(privacy.user(account), "busy")
    busy = await privacy.client.post(REQUESTS, json=body, headers=headers)
    assert busy.status_code == 409
    assert busy.headers["retry-after"] == "1"
    assert await count(privacy, PrivacyRequest) == 0
    # The first request died: once its lock lapsed, the retry is made, once.
    privacy.clock.advance(timedelta(minutes=2))
    retry = await privacy.client.post(REQUESTS, json=body, headers=headers)
    assert retry.status_code == 201
    again = await privacy.client.post(REQUESTS, json=body, headers=headers)
    assert again.json()["id"] == retry.json()["id"]
    assert await count(privacy, PrivacyRequest) == 1


async def test_keys_are_scoped_per_account(privacy: Privacy) -> None:
    mine = privacy.downstreams.identity.add_account(email="shop@example.nl")
    theirs = privacy.downstreams.identity.add_account(email="other@example.nl")
    body = {"type": "access"}
    first = await privacy.client.post(
        REQUESTS, json=body, headers=keyed(privacy.user(mine), "shared")
    )
    second = await privacy.client.post(
        REQUESTS, json=body, headers=keyed(privacy.user(theirs), "shared")
    )
    assert first.status_code == second.status_code == 201
    assert first.json()["id"] != second.json()["id"]
    assert second.json()["account_id"] == str(theirs)


async def test_request_without_an_account_refuses_the_key_and_mails_nothing(
    privacy: Privacy,
) -> None:
    response = await privacy.client.post(
        REQUESTS,
        json={"type": "access", "email": "piet@example.nl"},
        headers={"Idempotency-Key": "retry-1"},
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "Idempotency-Key"
    assert response.json()["errors"][0]["location"] == "header"
    assert await count(privacy, PrivacyRequest) == 0
    assert await count(privacy, IdempotencyKey) == 0
    assert privacy.inbox.to("piet@example.nl") == []
    # The same request without the header is made as always.
    plain = await privacy.client.post(REQUESTS, json={"type": "access", "email": "piet@example.nl"})
    assert plain.status_code == 201
    assert plain.json()["access_token"]


async def test_retried_incident_is_registered_once(privacy: Privacy) -> None:
    officer = keyed(privacy.officer(), "breach-2026-11-25")
    body = breach(privacy)
    first = await privacy.client.post("/v1/privacy/incidents", json=body, headers=officer)
    assert first.status_code == 201, first.text
    retry = await privacy.client.post("/v1/privacy/incidents", json=body, headers=officer)
    assert retry.status_code == 201
    assert retry.json()["id"] == first.json()["id"]
    assert retry.headers["location"] == f"/v1/privacy/incidents/{first.json()['id']}"
    other = await privacy.client.post(
        "/v1/privacy/incidents", json=breach(privacy, subjects_count=5), headers=officer
    )
    assert other.status_code == 422
    assert other.json()["errors"][0]["field"] == "Idempotency-Key"
    assert await count(privacy, Incident) == 1


async def test_retried_disclosure_is_registered_once(privacy: Privacy) -> None:
    officer = keyed(privacy.officer(), "PL1700-2026-123456")
    first = await privacy.client.post(
        "/v1/privacy/disclosures", json=police_request(), headers=officer
    )
    assert first.status_code == 201, first.text
    retry = await privacy.client.post(
        "/v1/privacy/disclosures", json=police_request(), headers=officer
    )
    assert retry.json()["id"] == first.json()["id"]
    assert retry.headers["idempotent-replayed"] == "true"
    other = await privacy.client.post(
        "/v1/privacy/disclosures",
        json=police_request(requested_data="All shipments"),
        headers=officer,
    )
    assert other.status_code == 422
    assert other.json()["errors"][0]["field"] == "Idempotency-Key"
    assert await count(privacy, Disclosure) == 1


async def test_an_officers_keys_are_their_own(privacy: Privacy) -> None:
    key = "same-key"
    first = await privacy.client.post(
        "/v1/privacy/incidents", json=breach(privacy), headers=keyed(privacy.officer(), key)
    )
    colleague = bearer(privacy.issuer.staff(Role.PRIVACY_OFFICER))
    second = await privacy.client.post(
        "/v1/privacy/incidents", json=breach(privacy), headers=keyed(colleague, key)
    )
    assert first.status_code == second.status_code == 201
    assert first.json()["id"] != second.json()["id"]


async def test_stored_answers_are_exported_and_erased_with_the_subject(privacy: Privacy) -> None:
    account = privacy.downstreams.identity.add_account(email="shop@example.nl")
    made = await privacy.client.post(
        REQUESTS,
        json={"type": "access", "message": "My own words"},
        headers=keyed(privacy.user(account), "mine"),
    )
    # A letter the officer entered about the same person holds their address and phone.
    letter = await privacy.client.post(
        REQUESTS,
        json={
            "type": "access",
            "email": "shop@example.nl",
            "phone": "+31612345678",
            "verification_note": "ID seen at the desk; called the number back.",
        },
        headers=keyed(privacy.officer(), "letter-1"),
    )
    assert letter.status_code == 201, letter.text
    unrelated = await privacy.client.post(
        "/v1/privacy/incidents", json=breach(privacy), headers=keyed(privacy.officer(), "i-1")
    )
    assert unrelated.status_code == 201
    subject = {"account_id": str(account), "email": "shop@example.nl"}
    exported = await privacy.client.post(
        "/internal/v1/subjects/export",
        json={"subject": subject, "request_id": str(uuid.uuid4())},
        headers=subjects_service(privacy),
    )
    lines = [orjson.loads(line) for line in exported.content.splitlines()]
    # Meta lines naming a table's PII categories carry no record.
    records = [line for line in lines if "record" in line]
    answers = [line["record"] for line in records if line["table"] == "idempotency_keys"]
    assert {a["resource_id"] for a in answers} == {made.json()["id"], letter.json()["id"]}
    assert any("My own words" in a["response_body"] for a in answers)
    erased = await privacy.client.post(
        "/internal/v1/subjects/erase",
        json={"subject": subject, "request_id": str(uuid.uuid4())},
        headers=subjects_service(privacy),
    )
    assert erased.status_code == 200
    assert erased.json()["erased"]["idempotency_keys"] == 2
    async with privacy.app.state.database.session() as session:
        left = (await session.scalars(select(IdempotencyKey.resource_id))).all()
    assert left == [uuid.UUID(unrelated.json()["id"])]


async def test_deadlines_run_deletes_expired_keys(privacy: Privacy) -> None:
    account = privacy.downstreams.identity.add_account(email="shop@example.nl")
    headers = keyed(privacy.user(account), "old")
    first = await privacy.client.post(REQUESTS, json={"type": "access"}, headers=headers)
    assert await count(privacy, IdempotencyKey) == 1
    privacy.clock.advance(timedelta(hours=23))
    report = await run_deadlines(collaborators_of(privacy.app.state))
    assert report.idempotency_keys_purged == 0
    privacy.clock.advance(timedelta(hours=2))
    report = await run_deadlines(collaborators_of(privacy.app.state))
    assert report.idempotency_keys_purged == 1
    assert await count(privacy, IdempotencyKey) == 0
    # After 24 hours the key is free again: the same body is a new request.
    again = await privacy.client.post(REQUESTS, json={"type": "access"}, headers=headers)
    assert again.status_code == 201
    assert again.json()["id"] != first.json()["id"]
