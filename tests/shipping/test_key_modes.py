"""An API key sees and acts on the shipments of its own mode only (0205): a ``pp_test_`` key
the sandbox's, a live key the live ones; the account holder's own login sees both."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select

from libs.common.auth import Role
from services.shipping_api.models import ShipmentEvent, SupportAccess
from services.shipping_api.shipments import fastpath
from tests.shipping.conftest import Shipping, record_direct_statements
from tests.support.db import on_postgres
from tests.support.shipping_factories import shipment_body
from tests.support.tokens import bearer


def login(shipping: Shipping) -> dict[str, str]:
    return bearer(shipping.issuer.user(shipping.account_id))


async def statuses(shipping: Shipping, shipment_id: str) -> list[str]:
    async with shipping.session() as session:
        rows = await session.scalars(
            select(ShipmentEvent.status)
            .where(ShipmentEvent.shipment_id == uuid.UUID(shipment_id))
            .order_by(ShipmentEvent.occurred_at, ShipmentEvent.id)
        )
        return list(rows)


async def listed(shipping: Shipping, headers: dict[str, str], query: str = "") -> list[str]:
    response = await shipping.client.get(f"/v1/shipments{query}", headers=headers)
    assert response.status_code == 200, response.text
    return sorted(s["id"] for s in response.json()["data"])


async def test_a_test_key_does_not_see_or_touch_live_shipments(shipping: Shipping) -> None:
    live = await shipping.create()
    client, test = shipping.client, shipping.test_headers
    for response in (
        await client.get(f"/v1/shipments/{live['id']}", headers=test),
        await client.get(f"/v1/shipments/{live['id']}/events", headers=test),
        await client.post(f"/v1/shipments/{live['id']}/cancel", headers=test),
        await client.get(f"/v1/shipments/{live['id']}/label", headers=test),
        await client.post("/v1/labels", json={"shipment_ids": [live["id"]]}, headers=test),
    ):
        assert response.status_code == 404, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert "Jan Jansen" not in response.text
    # Neither cancelled nor marked printed.
    assert (await shipping.stored(live["id"])).status == "created"
    assert await statuses(shipping, live["id"]) == ["created"]


async def test_a_live_key_does_not_see_or_simulate_sandbox_shipments(shipping: Shipping) -> None:
    sandbox = await shipping.create(headers=shipping.test_headers)
    client, live = shipping.client, shipping.headers
    for response in (
        await client.get(f"/v1/shipments/{sandbox['id']}", headers=live),
        await client.post(f"/v1/shipments/{sandbox['id']}/simulate", headers=live),
        await client.post(f"/v1/shipments/{sandbox['id']}/cancel", headers=live),
        await client.get(f"/v1/shipments/{sandbox['id']}/label", headers=live),
    ):
        assert response.status_code == 404, response.text
    assert await statuses(shipping, sandbox["id"]) == ["created"]
    # Its own key still drives it.
    moved = await client.post(
        f"/v1/shipments/{sandbox['id']}/simulate", headers=shipping.test_headers
    )
    assert moved.status_code == 200
    assert moved.json()["status"] == "label_printed"


async def test_direct_reads_answer_a_key_only_in_its_own_mode(
    shipping: Shipping, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On PostgreSQL a key's read is still one statement, with the key's mode a parameter of
    it; a shipment of the other mode is not found there, and the route answers 404 too."""
    reads = record_direct_statements(
        monkeypatch, fastpath.STATEMENT, lambda params, rows: (params["mode"], len(rows))
    )
    login_reads = record_direct_statements(
        monkeypatch, fastpath.LOGIN_STATEMENT, lambda _, rows: len(rows)
    )
    live = await shipping.create()
    sandbox = await shipping.create(headers=shipping.test_headers)
    client = shipping.client
    assert (await client.get(f"/v1/shipments/{live['id']}", headers=shipping.headers)).is_success
    assert (
        await client.get(f"/v1/shipments/{sandbox['id']}", headers=shipping.test_headers)
    ).is_success
    for shipment, other in ((live, shipping.test_headers), (sandbox, shipping.headers)):
        response = await client.get(f"/v1/shipments/{shipment['id']}", headers=other)
        assert response.status_code == 404
    for shipment in (live, sandbox):
        response = await client.get(f"/v1/shipments/{shipment['id']}", headers=login(shipping))
        assert response.json()["id"] == shipment["id"]
    assert reads == ([("live", 1), ("test", 1)] if on_postgres() else [])
    assert login_reads == ([1, 1] if on_postgres() else [])


async def test_lists_hold_the_keys_own_mode_and_the_login_sees_both(shipping: Shipping) -> None:
    live = await shipping.create()
    sandbox = await shipping.create(headers=shipping.test_headers)
    assert await listed(shipping, shipping.test_headers) == [sandbox["id"]]
    assert await listed(shipping, shipping.headers) == [live["id"]]
    assert await listed(shipping, login(shipping)) == sorted([live["id"], sandbox["id"]])
    assert await listed(shipping, login(shipping), "?mode=test") == [sandbox["id"]]
    assert await listed(shipping, login(shipping), "?mode=live") == [live["id"]]
    assert await listed(shipping, shipping.headers, "?mode=live") == [live["id"]]
    refused = await shipping.client.get("/v1/shipments?mode=live", headers=shipping.test_headers)
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["field"] == "mode"


async def test_the_login_reads_and_acts_on_both_modes(shipping: Shipping) -> None:
    live = await shipping.create()
    sandbox = await shipping.create(headers=shipping.test_headers)
    headers = login(shipping)
    for created in (live, sandbox):
        response = await shipping.client.get(f"/v1/shipments/{created['id']}", headers=headers)
        assert response.status_code == 200
        assert response.json()["mode"] == created["mode"]
    assert [live["mode"], sandbox["mode"]] == ["live", "test"]
    cancelled = await shipping.client.post(f"/v1/shipments/{live['id']}/cancel", headers=headers)
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"
    # The login drives its own sandbox too (the dashboard's test mode); a live one stays put.
    simulated = await shipping.client.post(
        f"/v1/shipments/{sandbox['id']}/simulate", headers=headers
    )
    assert simulated.status_code == 200
    assert simulated.json()["status"] == "label_printed"
    refused = await shipping.client.post(f"/v1/shipments/{live['id']}/simulate", headers=headers)
    assert refused.status_code == 409


async def test_an_idempotency_key_of_a_test_key_never_answers_a_live_create(
    shipping: Shipping,
) -> None:
    body = shipment_body(reference="ORDER-77")

    async def create(headers: dict[str, str]) -> dict[str, str]:
        response = await shipping.client.post(
            "/v1/shipments", json=body, headers={**headers, "Idempotency-Key": "order-77"}
        )
        assert response.status_code == 201, response.text
        return {"id": response.json()["id"], "mode": response.json()["mode"]}

    sandbox = await create(shipping.test_headers)
    live = await create(shipping.headers)
    assert sandbox["mode"] == "test"
    assert live["mode"] == "live"
    assert live["id"] != sandbox["id"]
    # Each mode's retry still gets its own answer back.
    assert await create(shipping.test_headers) == sandbox
    assert await create(shipping.headers) == live


async def test_staff_list_by_tracking_code_audits_account_and_shipment(
    shipping: Shipping,
) -> None:
    created = await shipping.create()
    response = await shipping.client.get(
        f"/v1/shipments?tracking_code={created['tracking_code']}",
        headers=shipping.staff(Role.SUPPORT, reason="Recipient called about the parcel"),
    )
    assert response.status_code == 200
    assert [s["id"] for s in response.json()["data"]] == [created["id"]]
    async with shipping.session() as session:
        entries = (await session.scalars(select(SupportAccess))).all()
    assert [(e.action, e.account_id, e.shipment_id) for e in entries] == [
        ("list_shipments", shipping.account_id, uuid.UUID(created["id"]))
    ]
