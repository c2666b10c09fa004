"""API keys: shown once, stored as a hash, listed without secrets, revoked, introspected."""

from __future__ import annotations

import re
import uuid

from sqlalchemy import select

from services.identity_api.models import ApiKey
from tests.support.identity_app import Identity, bearer

KEY = re.compile(r"^pp_(live|test)_[a-z0-9]{12}_[A-Za-z0-9]{40}$")


async def test_create_returns_the_key_once_and_stores_only_a_hash(identity: Identity) -> None:
    _, headers = await identity.user()
    created = await identity.api_key(
        headers, name="WooCommerce", scopes=["shipments:write", "shipments:read"]
    )
    assert KEY.fullmatch(created["key"])
    assert created["key"].startswith(f"pp_live_{created['prefix']}_")
    assert created["scopes"] == ["shipments:read", "shipments:write"]
    assert created["mode"] == "live"
    async with identity.database.session() as session:
        row = await session.get(ApiKey, uuid.UUID(created["id"]))
    assert row is not None
    assert row.secret_hash is not None
    assert created["key"] not in row.secret_hash
    assert created["key"].split("_")[-1] not in str(row.secret_hash)
    listed = await identity.client.get("/v1/api-keys", headers=headers)
    assert listed.status_code == 200
    assert created["key"] not in listed.text
    [item] = listed.json()["data"]
    assert "key" not in item
    assert item["prefix"] == created["prefix"]


async def test_test_mode_key_has_its_prefix(identity: Identity) -> None:
    _, headers = await identity.user()
    created = await identity.api_key(headers, mode="test")
    assert created["key"].startswith("pp_test_")


async def test_unknown_scope_is_422(identity: Identity) -> None:
    _, headers = await identity.user()
    response = await identity.client.post(
        "/v1/api-keys", json={"name": "x", "scopes": ["admin"]}, headers=headers
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"].startswith("scopes")


async def test_api_key_authenticates_with_its_scopes_and_stops_when_revoked(
    identity: Identity,
) -> None:
    _, headers = await identity.user()
    created = await identity.api_key(headers)
    # Authenticated (an API key may not manage the account: 403, not 401).
    response = await identity.client.get("/v1/accounts/me", headers=bearer(created["key"]))
    assert response.status_code == 403
    revoke = await identity.client.delete(f"/v1/api-keys/{created['id']}", headers=headers)
    assert revoke.status_code == 204
    response = await identity.client.get("/v1/accounts/me", headers=bearer(created["key"]))
    assert response.status_code == 401
    listed = (await identity.client.get("/v1/api-keys", headers=headers)).json()["data"]
    assert listed[0]["revoked_at"] is not None


async def test_another_accounts_key_is_404(identity: Identity) -> None:
    _, owner = await identity.user()
    created = await identity.api_key(owner)
    _, stranger = await identity.user()
    response = await identity.client.delete(f"/v1/api-keys/{created['id']}", headers=stranger)
    assert response.status_code == 404
    assert (await identity.client.get("/v1/api-keys", headers=stranger)).json()["data"] == []


async def test_an_api_key_cannot_create_keys(identity: Identity) -> None:
    _, headers = await identity.user()
    created = await identity.api_key(headers)
    response = await identity.client.post(
        "/v1/api-keys",
        json={"name": "more", "scopes": ["shipments:read"]},
        headers=bearer(created["key"]),
    )
    assert response.status_code == 403


async def test_introspection_tells_services_what_a_key_may_do(identity: Identity) -> None:
    account, headers = await identity.user()
    created = await identity.api_key(headers, scopes=["shipments:read"], mode="test")
    service = bearer(await identity.service_token("shipping_api"))
    response = await identity.client.post(
        "/internal/v1/api-keys/introspect", json={"token": created["key"]}, headers=service
    )
    assert response.status_code == 200
    assert response.json() == {
        "active": True,
        "key_id": created["id"],
        "account_id": account["account_id"],
        "scopes": ["shipments:read"],
        "mode": "test",
    }
    await identity.client.delete(f"/v1/api-keys/{created['id']}", headers=headers)
    response = await identity.client.post(
        "/internal/v1/api-keys/introspect", json={"token": created["key"]}, headers=service
    )
    assert response.json() == {"active": False}


async def test_introspection_of_garbage_and_tampered_keys_is_inactive(identity: Identity) -> None:
    _, headers = await identity.user()
    created = await identity.api_key(headers)
    service = bearer(await identity.service_token("shipping_api"))
    tampered = created["key"][:-1] + ("A" if created["key"][-1] != "A" else "B")
    other_mode = created["key"].replace("pp_live_", "pp_test_")
    for token in ["pp_live_nonsense", tampered, other_mode]:
        response = await identity.client.post(
            "/internal/v1/api-keys/introspect", json={"token": token}, headers=service
        )
        assert response.json() == {"active": False}


async def test_introspection_needs_a_service_token_with_its_scope(identity: Identity) -> None:
    _, headers = await identity.user()
    body = {"token": "pp_live_x"}
    anonymous = await identity.client.post("/internal/v1/api-keys/introspect", json=body)
    assert anonymous.status_code == 401
    as_user = await identity.client.post(
        "/internal/v1/api-keys/introspect", json=body, headers=headers
    )
    assert as_user.status_code == 401
    creds = {"grant_type": "client_credentials", "client_id": "privacy_api"}
    token = (
        await identity.token_response(
            **creds, client_secret="dev-only-privacy_api", scope="internal:subjects"
        )
    ).json()["access_token"]
    narrow = await identity.client.post(
        "/internal/v1/api-keys/introspect", json=body, headers=bearer(token)
    )
    assert narrow.status_code == 403


async def test_key_creation_and_revocation_are_security_events(identity: Identity) -> None:
    _, headers = await identity.user()
    created = await identity.api_key(headers, name="Magento")
    await identity.client.delete(f"/v1/api-keys/{created['id']}", headers=headers)
    events = (await identity.client.get("/v1/accounts/me/security-events", headers=headers)).json()[
        "data"
    ]
    assert [e["type"] for e in events[:2]] == ["api_key_revoked", "api_key_created"]
    assert events[0]["details"]["name"] == "Magento"


async def test_use_of_a_key_is_recorded(identity: Identity) -> None:
    _, headers = await identity.user()
    created = await identity.api_key(headers)
    await identity.client.get("/v1/accounts/me", headers=bearer(created["key"]))
    async with identity.database.session() as session:
        used = await session.scalar(
            select(ApiKey.last_used_at).where(ApiKey.prefix == created["prefix"])
        )
    assert used is not None


async def test_the_location_of_a_new_key_answers_it_without_the_secret(
    identity: Identity,
) -> None:
    _, headers = await identity.user()
    created = await identity.client.post(
        "/v1/api-keys", json={"name": "Webshop", "scopes": ["shipments:read"]}, headers=headers
    )
    assert created.status_code == 201, created.text
    key = created.json()
    assert created.headers["location"] == f"/v1/api-keys/{key['id']}"
    read = await identity.client.get(created.headers["location"], headers=headers)
    assert read.status_code == 200
    assert read.json() == {name: value for name, value in key.items() if name != "key"}
    assert key["key"] not in read.text
    await identity.client.delete(created.headers["location"], headers=headers)
    revoked = await identity.client.get(created.headers["location"], headers=headers)
    assert revoked.json()["revoked_at"] is not None
