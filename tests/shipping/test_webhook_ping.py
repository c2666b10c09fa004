"""``POST /v1/webhook-endpoints/{id}/ping``: a test delivery, sent, signed and logged as every
delivery is, so an integrator can check a receiver before shipments flow (decision 0206)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

import httpx
import orjson
import pytest

from services.shipping_api.settings import ShippingSettings
from services.shipping_api.webhooks import service
from services.shipping_api.webhooks.signing import verify
from tests.shipping.conftest import Shipping, delete_account_rows, settings_for, start_shipping
from tests.shipping.test_webhooks import deliver, pause, register
from tests.support.db import on_postgres
from tests.support.shipping_receiver import Receiver
from tests.support.tokens import TokenIssuer


async def ping(shipping: Shipping, endpoint_id: str) -> httpx.Response:
    return await shipping.client.post(
        f"/v1/webhook-endpoints/{endpoint_id}/ping", headers=shipping.headers
    )


async def delivery_log(shipping: Shipping, endpoint_id: str) -> list[dict[str, Any]]:
    response = await shipping.client.get(
        f"/v1/webhook-endpoints/{endpoint_id}/deliveries", headers=shipping.headers
    )
    assert response.status_code == 200
    entries: list[dict[str, Any]] = response.json()["data"]
    return entries


async def test_a_ping_arrives_signed_and_is_logged(shipping: Shipping, receiver: Receiver) -> None:
    endpoint = await register(shipping, receiver.url)
    queued = await ping(shipping, endpoint["id"])
    assert queued.status_code == 202, queued.text
    assert queued.json()["event"] == "ping"
    assert queued.json()["state"] == "pending"
    assert queued.json()["shipment_id"] is None

    assert await deliver(shipping) == 1
    [received] = await receiver.wait_for(1)
    assert received.headers["parcelpro-event"] == "ping"
    assert received.headers["parcelpro-delivery"] == queued.json()["id"]
    assert verify(endpoint["secret"], received.headers["parcelpro-signature"], received.body)
    body = orjson.loads(received.body)
    assert body["type"] == "ping"
    assert body["id"] == queued.json()["id"]
    assert body["data"] == {"webhook_endpoint": {"id": endpoint["id"]}}

    [entry] = await delivery_log(shipping, endpoint["id"])
    assert (entry["id"], entry["event"], entry["state"]) == (
        queued.json()["id"],
        "ping",
        "delivered",
    )
    assert entry["last_status_code"] == 200


async def test_one_ping_at_a_time(shipping: Shipping, receiver: Receiver) -> None:
    endpoint = await register(shipping, receiver.url)
    assert (await ping(shipping, endpoint["id"])).status_code == 202
    again = await ping(shipping, endpoint["id"])
    assert again.status_code == 409
    assert again.json()["type"].endswith("/not-pingable")
    assert "still queued" in again.json()["detail"]

    assert await deliver(shipping) == 1
    await receiver.wait_for(1)
    assert (await ping(shipping, endpoint["id"])).status_code == 202
    assert [e["event"] for e in await delivery_log(shipping, endpoint["id"])] == ["ping", "ping"]


async def test_a_paused_endpoint_is_not_pinged(shipping: Shipping, receiver: Receiver) -> None:
    endpoint = await register(shipping, receiver.url)
    paused = await pause(shipping, endpoint["id"])
    assert paused.status_code == 200
    refused = await ping(shipping, endpoint["id"])
    assert refused.status_code == 409
    assert "paused" in refused.json()["detail"]
    assert await delivery_log(shipping, endpoint["id"]) == []


async def test_a_ping_is_not_an_event_one_can_subscribe_to(
    shipping: Shipping, receiver: Receiver
) -> None:
    refused = await shipping.client.post(
        "/v1/webhook-endpoints",
        json={"url": receiver.url, "events": ["ping"]},
        headers=shipping.headers,
    )
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["field"].startswith("events")


@pytest.mark.skipif(not on_postgres(), reason="row locks are PostgreSQL's")
async def test_a_ping_waits_for_one_being_queued_and_then_is_refused(
    shipping_settings: ShippingSettings, issuer: TokenIssuer, receiver: Receiver
) -> None:
    """Two pings at once: the second waits on the endpoint's row until the first is committed,
    then sees it queued."""
    async with start_shipping(settings_for(shipping_settings), issuer, committed=True) as shipping:
        try:
            endpoint = await register(shipping, receiver.url)
            async with shipping.session() as session:
                first = await service.ping(
                    session,
                    uuid.UUID(endpoint["id"]),
                    shipping.account_id,
                    retry_window=timedelta(hours=24),
                    now=shipping.clock.now(),
                )
                second = asyncio.create_task(ping(shipping, endpoint["id"]))
                await asyncio.sleep(0.5)
                assert not second.done()  # waiting for the first one's transaction
                await session.commit()
            refused = await second
            assert refused.status_code == 409
            assert "still queued" in refused.json()["detail"]
            log = await delivery_log(shipping, endpoint["id"])
            assert [e["id"] for e in log] == [str(first.id)]
        finally:
            await delete_account_rows(shipping.database, shipping.account_id)
