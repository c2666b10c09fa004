"""privacy_api's own answers to the internal data-subject API (decision 0004)."""

from __future__ import annotations

import uuid

import orjson

from libs.common.auth import ServiceScope
from tests.support.privacy_harness import Privacy
from tests.support.tokens import bearer

V = "2018-05-24"


def service(privacy: Privacy) -> dict[str, str]:
    return bearer(privacy.issuer.service("identity_api", [ServiceScope.SUBJECTS]))


async def give_consent(privacy: Privacy, account: uuid.UUID) -> None:
    response = await privacy.client.put(
        "/v1/privacy/consents",
        json={"profiling": {"granted": True, "text_version": V}, "source": "account_settings"},
        headers=privacy.user(account),
    )
    assert response.status_code == 200


async def test_export_streams_ndjson_of_privacys_own_records(privacy: Privacy) -> None:
    account = privacy.downstreams.identity.add_account(email="shop@example.nl")
    await give_consent(privacy, account)
    made = await privacy.request_as_account(account, type="access")
    response = await privacy.client.post(
        "/internal/v1/subjects/export",
        json={"subject": {"account_id": str(account)}, "request_id": str(uuid.uuid4())},
        headers=service(privacy),
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/x-ndjson")
    items = [orjson.loads(line) for line in response.content.splitlines()]
    lines = [item for item in items if "record" in item]
    tables = {(line["category"], line["table"]) for line in lines}
    # Each table's records follow a line naming the PII categories of its columns.
    named = {item["table"]: item["pii_categories"] for item in items if "record" not in item}
    assert named["consent"] == ["account_identifier", "consent"]
    assert "privacy_request" in named["privacy_request"]
    assert set(named) == {line["table"] for line in lines}
    assert ("consent", "consent") in tables
    assert ("consent", "consent_event") in tables
    assert ("privacy_request", "privacy_request") in tables
    request_line = next(line for line in lines if line["table"] == "privacy_request")
    assert request_line["record"]["id"] == made["id"]
    assert request_line["record"]["email_index"] == "[stored, not disclosed]"


async def test_export_of_someone_unknown_is_an_empty_body(privacy: Privacy) -> None:
    response = await privacy.client.post(
        "/internal/v1/subjects/export",
        json={"subject": {"email": "nobody@example.nl"}, "request_id": str(uuid.uuid4())},
        headers=service(privacy),
    )
    assert response.status_code == 200
    assert response.content == b""


async def test_erase_gives_the_same_answer_when_repeated_and_lists_what_is_kept(
    privacy: Privacy,
) -> None:
    account = privacy.downstreams.identity.add_account(email="shop@example.nl")
    await give_consent(privacy, account)
    body = {"subject": {"account_id": str(account)}, "request_id": str(uuid.uuid4())}
    first = await privacy.client.post(
        "/internal/v1/subjects/erase", json=body, headers=service(privacy)
    )
    assert first.status_code == 200
    assert first.json()["erased"]["consent"] == 1
    assert first.json()["erased"]["consent_event"] == 1
    kept = {(k["table"], k["field"]) for k in first.json()["kept"]}
    assert ("privacy_request", "email") in kept
    assert all(k["reason"] for k in first.json()["kept"])
    second = await privacy.client.post(
        "/internal/v1/subjects/erase", json=body, headers=service(privacy)
    )
    assert second.json() == first.json()
    consents = (
        await privacy.client.get("/v1/privacy/consents", headers=privacy.user(account))
    ).json()
    assert all(c["granted"] is False for c in consents["consents"])


async def test_restrict_flags_and_lifts_only_for_the_same_basis(privacy: Privacy) -> None:
    account = privacy.downstreams.identity.add_account(email="shop@example.nl")
    subject = {"account_id": str(account)}
    url = "/internal/v1/subjects/restrict"
    flagged = await privacy.client.post(
        url,
        json={
            "subject": subject,
            "request_id": str(uuid.uuid4()),
            "restricted": True,
            "basis": "objection",
        },
        headers=service(privacy),
    )
    assert flagged.json() == {"service": "privacy", "restricted": {"subject_restriction": 1}}
    lifted_other_basis = await privacy.client.post(
        url,
        json={
            "subject": subject,
            "request_id": str(uuid.uuid4()),
            "restricted": False,
            "basis": "restriction",
        },
        headers=service(privacy),
    )
    assert lifted_other_basis.json()["restricted"] == {"subject_restriction": 0}
    state = (await privacy.client.get("/v1/privacy/consents", headers=privacy.user(account))).json()
    assert state["restricted"] is True


async def test_rectify_names_the_field_privacy_cannot_correct(privacy: Privacy) -> None:
    response = await privacy.client.post(
        "/internal/v1/subjects/rectify",
        json={
            "subject": {"email": "piet@example.nl"},
            "request_id": str(uuid.uuid4()),
            "changes": {"email": "new@example.nl"},
        },
        headers=service(privacy),
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "changes.email"


async def test_subject_routes_need_a_service_token_with_the_subjects_scope(
    privacy: Privacy,
) -> None:
    body = {"subject": {"email": "piet@example.nl"}, "request_id": str(uuid.uuid4())}
    account = privacy.downstreams.identity.add_account(email="shop@example.nl")
    no_scope = bearer(privacy.issuer.service("shipping_api", [ServiceScope.CONSENTS_READ]))
    for action in ("export", "erase", "restrict"):
        url = f"/internal/v1/subjects/{action}"
        assert (await privacy.client.post(url, json=body)).status_code == 401
        assert (
            await privacy.client.post(url, json=body, headers=privacy.user(account))
        ).status_code == 401
        assert (await privacy.client.post(url, json=body, headers=no_scope)).status_code == 403
    empty = {"subject": {}, "request_id": str(uuid.uuid4())}
    assert (
        await privacy.client.post(
            "/internal/v1/subjects/erase", json=empty, headers=service(privacy)
        )
    ).status_code == 422
