"""OWASP API1 (broken object level authorization): every route with an id in its path, read
from the apps' route tables, is either a route over an account's objects — where another
account's object is 404 for reads, changes, deletes and actions alike, and stays as it was —
or a route that no account holder may call at all (staff, services, public look-ups), which
the role matrix (API5) covers. A new route with an id must be put in one of the two tables."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from services.shipping_api.models import WebhookDelivery
from services.shipping_api.webhooks.outbox import DeliveryState
from tests.security.conftest import Running, ShippingWorld
from tests.support.access_matrix import routes_of
from tests.support.identity_app import Identity
from tests.support.privacy_harness import Privacy
from tests.support.tokens import bearer


@dataclass(frozen=True)
class Attempt:
    """What the other account sends: the object's id goes into ``{object}``."""

    body: Any = None


ACCOUNT_OBJECTS: dict[tuple[str, str, str], Attempt] = {
    ("identity", "GET", "/v1/api-keys/{key_id}"): Attempt(),
    ("identity", "DELETE", "/v1/api-keys/{key_id}"): Attempt(),
    ("shipping", "GET", "/v1/shipments/{shipment_id}"): Attempt(),
    ("shipping", "GET", "/v1/shipments/{shipment_id}/events"): Attempt(),
    ("shipping", "GET", "/v1/shipments/{shipment_id}/label"): Attempt(),
    ("shipping", "POST", "/v1/shipments/{shipment_id}/cancel"): Attempt(),
    ("shipping", "POST", "/v1/shipments/{shipment_id}/simulate"): Attempt({}),
    ("shipping", "GET", "/v1/webhook-endpoints/{endpoint_id}"): Attempt(),
    ("shipping", "PATCH", "/v1/webhook-endpoints/{endpoint_id}"): Attempt(
        {"description": "taken over", "is_active": False}
    ),
    ("shipping", "DELETE", "/v1/webhook-endpoints/{endpoint_id}"): Attempt(),
    ("shipping", "GET", "/v1/webhook-endpoints/{endpoint_id}/deliveries"): Attempt(),
    ("shipping", "POST", "/v1/webhook-endpoints/{endpoint_id}/ping"): Attempt(),
    ("shipping", "POST", "/v1/webhook-endpoints/{endpoint_id}/rotate-secret"): Attempt(
        {"previous_secret_valid_hours": 0}
    ),
    (
        "shipping",
        "POST",
        "/v1/webhook-endpoints/{endpoint_id}/deliveries/{delivery_id}/redeliver",
    ): (Attempt()),
    ("privacy", "GET", "/v1/privacy/requests/{request_id}"): Attempt(),
    ("privacy", "GET", "/v1/privacy/requests/{request_id}/export"): Attempt(),
    ("privacy", "POST", "/v1/privacy/requests/{request_id}/verify"): Attempt({"code": "123456"}),
}
"""Routes over one account's (or one requester's) objects."""

NOT_ACCOUNT_OBJECTS: dict[tuple[str, str, str], str] = {
    ("identity", "POST", "/v1/staff/users/{staff_id}/disable"): "admins only",
    ("identity", "POST", "/v1/staff/users/{staff_id}/enable"): "admins only",
    ("identity", "GET", "/v1/staff/accounts/{account_id}"): "staff only, audited",
    ("identity", "GET", "/internal/v1/accounts/{account_id}"): "service tokens only",
    ("identity", "POST", "/internal/v1/accounts/{account_id}/notices"): "shipping's token only",
    ("shipping", "POST", "/v1/shipments/{shipment_id}/notes"): "support staff only",
    ("shipping", "GET", "/v1/shipments/{shipment_id}/notes"): "support staff only, audited",
    ("shipping", "GET", "/v1/shipments/{shipment_id}/notes/{note_id}"): "support staff, audited",
    ("shipping", "GET", "/v1/tracking/{tracking_code}"): "public; the code is the secret",
    ("shipping", "POST", "/v1/carriers/{carrier}/events"): "carriers, HMAC-signed",
    ("privacy", "POST", "/v1/privacy/requests/{request_id}/extend"): "privacy officer only",
    ("privacy", "POST", "/v1/privacy/requests/{request_id}/reject"): "privacy officer only",
    ("privacy", "GET", "/v1/privacy/disclosures/{disclosure_id}"): "privacy officer only",
    ("privacy", "POST", "/v1/privacy/disclosures/{disclosure_id}/decision"): "officer only",
    ("privacy", "GET", "/v1/privacy/disclosures/{disclosure_id}/export"): "officer only",
    ("privacy", "GET", "/v1/privacy/incidents/{incident_id}"): "privacy officer only",
    ("privacy", "PATCH", "/v1/privacy/incidents/{incident_id}"): "privacy officer only",
}


CREDENTIALS = ("login", "own_request_token")


def with_id(path: str, object_id: str) -> str:
    start, end = path.index("{"), path.index("}")
    return path[:start] + object_id + path[end + 1 :]


def routes_for(service: str) -> list[tuple[str, str]]:
    return sorted((m, p) for (s, m, p) in ACCOUNT_OBJECTS if s == service)


@pytest.mark.parametrize("service", ["identity", "shipping", "privacy"])
def test_every_route_with_an_id_is_classified(
    service: str, running_services: dict[str, Running]
) -> None:
    with_ids = {
        (service, route.method, route.path)
        for route in routes_of(service, running_services[service].app)
        if "{" in route.path
    }
    classified = {key for key in (*ACCOUNT_OBJECTS, *NOT_ACCOUNT_OBJECTS) if key[0] == service}
    assert with_ids == classified


async def _send(
    client: httpx.AsyncClient, method: str, path: str, headers: dict[str, str], body: Any
) -> httpx.Response:
    kwargs = {} if body is None else {"json": body}
    return await client.request(method, path, headers=headers, **kwargs)


# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path"), routes_for("identity"))
async def test_another_accounts_api_key_is_404(identity: Identity, method: str, path: str) -> None:
    _, owner = await identity.user()
    _, other = await identity.user()
    key = await identity.api_key(owner, scopes=["shipments:read"])
    attempt = ACCOUNT_OBJECTS[("identity", method, path)]

    response = await _send(identity.client, method, with_id(path, key["id"]), other, attempt.body)

    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    keys = (await identity.client.get("/v1/api-keys", headers=owner)).json()["data"]
    assert [(k["id"], k["revoked_at"]) for k in keys] == [(key["id"], None)]


@pytest.mark.parametrize(("method", "path"), routes_for("shipping"))
@pytest.mark.parametrize("credential", ["login", "api_key"])
async def test_another_accounts_shipment_or_webhook_endpoint_is_404(
    shipping_world: ShippingWorld, method: str, path: str, credential: str
) -> None:
    client = shipping_world.running.client
    _, owner = shipping_world.account(mode="test")
    other_id, other_key = shipping_world.account(mode="test")
    other = bearer(shipping_world.issuer.user(other_id)) if credential == "login" else other_key
    endpoint = await client.post(
        "/v1/webhook-endpoints",
        json={"url": "https://93.184.215.14/hook", "events": ["shipment.created"]},
        headers=owner,
    )
    assert endpoint.status_code == 201, endpoint.text
    shipment = await shipping_world.create_shipment(owner)
    target = shipment["id"] if "{shipment_id}" in path else endpoint.json()["id"]
    filled = with_id(path, target)
    if "{delivery_id}" in filled:
        # The owner's delivery, failed: one the owner could send again.
        delivery = await _failed_delivery(shipping_world, uuid.UUID(target))
        filled = filled.replace("{delivery_id}", str(delivery))
    attempt = ACCOUNT_OBJECTS[("shipping", method, path)]

    response = await _send(client, method, filled, other, attempt.body)

    assert response.status_code == 404, response.text
    assert response.headers["content-type"] == "application/problem+json"
    own = await client.get(f"/v1/shipments/{shipment['id']}", headers=owner)
    assert own.json()["status"] == "created"
    own_endpoint = await client.get(f"/v1/webhook-endpoints/{target}", headers=owner)
    if "{endpoint_id}" in path:
        assert own_endpoint.status_code == 200
        assert own_endpoint.json()["is_active"] is True
        assert own_endpoint.json()["description"] is None
        assert own_endpoint.json()["secret_hint"] == endpoint.json()["secret_hint"]
    log = await client.get(
        f"/v1/webhook-endpoints/{endpoint.json()['id']}/deliveries", headers=owner
    )
    expected = "failed" if "{delivery_id}" in path else "pending"
    assert [entry["state"] for entry in log.json()["data"]] == [expected]


async def _failed_delivery(world: ShippingWorld, endpoint_id: uuid.UUID) -> uuid.UUID:
    async with world.database.session() as session:
        delivery = await session.scalar(
            select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint_id)
        )
        assert delivery is not None
        delivery.state = DeliveryState.FAILED
        delivery.next_attempt_at = None
        await session.commit()
        return delivery.id


PRIVACY_ATTEMPTS = [
    (method, path, credential)
    for method, path in routes_for("privacy")
    # Verification takes the request's token only; a login is no credential there (401).
    for credential in (("own_request_token",) if path.endswith("/verify") else CREDENTIALS)
]


@pytest.mark.parametrize(("method", "path", "credential"), PRIVACY_ATTEMPTS)
async def test_another_persons_privacy_request_is_404(
    privacy: Privacy, method: str, path: str, credential: str
) -> None:
    owner_id = privacy.downstreams.identity.add_account(email="owner@example.nl")
    other_id = privacy.downstreams.identity.add_account(email="other@example.nl")
    owned = await privacy.request_as_account(owner_id, type="access")
    if credential == "login":
        other = privacy.user(other_id)
    else:
        own = await privacy.client.post(
            "/v1/privacy/requests", json={"type": "access", "email": "someone@example.nl"}
        )
        assert own.status_code == 201, own.text
        other = {"X-Privacy-Request-Token": own.json()["access_token"]}
    attempt = ACCOUNT_OBJECTS[("privacy", method, path)]

    response = await _send(privacy.client, method, with_id(path, owned["id"]), other, attempt.body)

    assert response.status_code == 404, response.text
    seen = await privacy.client.get(
        f"/v1/privacy/requests/{owned['id']}", headers=privacy.user(owner_id)
    )
    assert seen.status_code == 200
    assert seen.json()["status"] == owned["status"]
