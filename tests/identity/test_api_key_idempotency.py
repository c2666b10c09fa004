"""Idempotency-Key on ``POST /v1/api-keys``: a retry creates no second key, and the stored
answer never holds the secret (decision 0107: shown once, stored only as a hash)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import select

from services.identity_api.api_keys.service import MAX_ACTIVE_KEYS
from services.identity_api.housekeeping import run_housekeeping
from services.identity_api.models import IdempotencyKey
from tests.support.identity_app import Identity, bearer

BODY = {"name": "WooCommerce", "scopes": ["shipments:read", "shipments:write"]}


async def create(
    identity: Identity, headers: dict[str, str], key: str, body: dict[str, Any] | None = None
) -> httpx.Response:
    return await identity.client.post(
        "/v1/api-keys", json=body or BODY, headers={**headers, "Idempotency-Key": key}
    )


async def listed(identity: Identity, headers: dict[str, str]) -> list[dict[str, Any]]:
    response = await identity.client.get("/v1/api-keys", headers=headers)
    assert response.status_code == 200
    data: list[dict[str, Any]] = response.json()["data"]
    return data


async def stored_answers(identity: Identity) -> list[IdempotencyKey]:
    async with identity.database.session() as session:
        return list((await session.scalars(select(IdempotencyKey))).all())


async def test_retry_with_the_same_key_creates_no_second_key_and_points_at_the_first(
    identity: Identity,
) -> None:
    _, headers = await identity.user()
    first = await create(identity, headers, "plugin-install-1")
    assert first.status_code == 201
    assert first.json()["key"].startswith("pp_live_")

    # Same JSON in another key order: the same request.
    retry = await create(identity, headers, "plugin-install-1", dict(reversed(BODY.items())))

    assert retry.status_code == 409
    problem = retry.json()
    assert problem["type"].endswith("/replay-unavailable")
    assert problem["errors"][0]["field"] == "Idempotency-Key"
    assert first.headers["location"] in problem["detail"]
    assert "revoke" in problem["detail"]
    assert retry.headers["location"] == first.headers["location"]
    # Not "still in flight": nothing to wait for.
    assert "retry-after" not in retry.headers
    assert first.json()["key"] not in retry.text
    [only] = await listed(identity, headers)
    assert only["id"] == first.json()["id"]


async def test_a_client_that_lost_the_first_answer_revokes_it_and_creates_anew(
    identity: Identity,
) -> None:
    _, headers = await identity.user()
    await create(identity, headers, "plugin-install-7")
    retry = await create(identity, headers, "plugin-install-7")

    revoked = await identity.client.delete(retry.headers["location"], headers=headers)
    fresh = await create(identity, headers, "plugin-install-8")

    assert revoked.status_code == 204
    assert fresh.status_code == 201
    active = {key["id"]: key["revoked_at"] is None for key in await listed(identity, headers)}
    assert active == {retry.headers["location"].rsplit("/", 1)[-1]: False, fresh.json()["id"]: True}
    me = await identity.client.get("/v1/accounts/me", headers=bearer(fresh.json()["key"]))
    assert me.status_code == 403  # authenticated: an API key may not manage the account


async def test_stored_answer_holds_no_secret(identity: Identity) -> None:
    _, headers = await identity.user()
    first = await create(identity, headers, "plugin-install-2")
    secret = first.json()["key"]

    [row] = await stored_answers(identity)

    assert row.response_status == 201
    assert row.response_body is not None
    assert first.json()["id"] in row.response_body
    stored = " ".join(str(getattr(row, column.key)) for column in IdempotencyKey.__table__.c)
    assert secret not in stored
    assert secret.rsplit("_", 1)[-1] not in stored


async def test_same_key_with_another_body_is_422_naming_the_header(identity: Identity) -> None:
    _, headers = await identity.user()
    await create(identity, headers, "plugin-install-3")

    other = await create(identity, headers, "plugin-install-3", {**BODY, "name": "Shopify"})

    assert other.status_code == 422
    assert other.json()["errors"][0]["field"] == "Idempotency-Key"
    assert [item["name"] for item in await listed(identity, headers)] == ["WooCommerce"]


async def test_another_accounts_same_key_creates_its_own(identity: Identity) -> None:
    _, alice = await identity.user()
    _, bob = await identity.user()
    first = await create(identity, alice, "shared-key")

    theirs = await create(identity, bob, "shared-key")

    assert theirs.status_code == 201
    assert "idempotent-replayed" not in theirs.headers
    assert theirs.json()["key"].startswith("pp_live_")
    assert theirs.json()["id"] != first.json()["id"]
    assert [item["id"] for item in await listed(identity, bob)] == [theirs.json()["id"]]
    assert [item["id"] for item in await listed(identity, alice)] == [first.json()["id"]]


async def test_a_refused_create_frees_the_key_for_the_retry(identity: Identity) -> None:
    _, headers = await identity.user()
    keys = [await identity.api_key(headers) for _ in range(MAX_ACTIVE_KEYS)]
    refused = await create(identity, headers, "plugin-install-4")
    assert refused.status_code == 409
    revoked = await identity.client.delete(f"/v1/api-keys/{keys[0]['id']}", headers=headers)
    assert revoked.status_code == 204

    retry = await create(identity, headers, "plugin-install-4")

    assert retry.status_code == 201
    assert "idempotent-replayed" not in retry.headers
    assert retry.json()["key"].startswith("pp_live_")


async def test_purge_expired_deletes_stored_answers_after_a_day(identity: Identity) -> None:
    _, headers = await identity.user()
    await create(identity, headers, "plugin-install-5")
    identity.clock.advance(timedelta(hours=25))

    deleted = await run_housekeeping(
        identity.database.sessionmaker, identity.settings, now=identity.clock.now()
    )

    assert deleted["idempotency_keys"] == 1
    assert await stored_answers(identity) == []


async def test_subject_export_holds_and_erasure_deletes_the_stored_answers(
    identity: Identity,
) -> None:
    account, headers = await identity.user()
    first = await create(identity, headers, "plugin-install-6")
    service = bearer(await identity.service_token("privacy_api"))
    subject = {"account_id": account["account_id"]}

    export = await identity.client.post(
        "/internal/v1/subjects/export",
        json={"subject": subject, "request_id": "pr-idem-1"},
        headers=service,
    )
    erase = await identity.client.post(
        "/internal/v1/subjects/erase",
        json={"subject": subject, "request_id": "pr-idem-2"},
        headers=service,
    )

    assert export.status_code == 200
    assert '"table":"idempotency_keys"' in export.text
    assert first.json()["id"] in export.text
    assert first.json()["key"] not in export.text
    assert erase.json()["erased"]["idempotency_keys"] == 1
    assert await stored_answers(identity) == []
