"""The service as a whole: settings refused in production, OpenAPI, workers, Redis limits."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from libs.common.ratelimit import RateLimiter
from services.shipping_api.models import Shipment
from services.shipping_api.settings import ShippingSettings
from tests.shipping.conftest import delete_account_rows, settings_for, start_shipping
from tests.support.shipping_carriers import carrier_event, push_event
from tests.support.tokens import TokenIssuer

REDIS_URL = "redis://127.0.0.1:6379/2"
STRONG = "x" * 40


def production(**changes: Any) -> ShippingSettings:
    values: dict[str, Any] = {
        "environment": "production",
        "blind_index_key": STRONG,
        "webhook_secret_key": STRONG,
        "carrier_secrets": {c: STRONG for c in ("postnl", "dhl", "dpd", "gls", "ups")},
        "service_client_secret": STRONG,
    }
    values.update(changes)
    return ShippingSettings(**values)


def test_production_refuses_development_secrets_and_loopback_webhooks() -> None:
    assert production().purge_in_process is False
    for changes in (
        {"blind_index_key": ""},
        {"webhook_secret_key": "dev-only-webhook-secret-key"},
        {"carrier_secrets": {"postnl": STRONG}},
        {"webhook_allow_loopback": True},
    ):
        with pytest.raises(ValidationError):
            production(**changes)


def test_development_gets_well_known_keys_and_the_in_process_purge() -> None:
    settings = ShippingSettings(environment="development")
    assert settings.purge_in_process is True
    assert settings.carrier_secrets["ups"] == "dev-only-carrier-ups"


async def test_openapi_documents_every_route_with_problems(
    shipping_settings: ShippingSettings, issuer: TokenIssuer
) -> None:
    async with start_shipping(settings_for(shipping_settings), issuer) as shipping:
        response = await shipping.client.get("/openapi.json")
    assert response.status_code == 200
    document = response.json()
    paths = document["paths"]
    for path in (
        "/v1/shipments",
        "/v1/shipments/bulk",
        "/v1/shipments/{shipment_id}",
        "/v1/shipments/{shipment_id}/cancel",
        "/v1/shipments/{shipment_id}/label",
        "/v1/shipments/{shipment_id}/simulate",
        "/v1/shipments/{shipment_id}/notes",
        "/v1/labels",
        "/v1/tracking/{tracking_code}",
        "/v1/carriers/{carrier}/events",
        "/v1/webhook-endpoints",
        "/v1/webhook-endpoints/{endpoint_id}/deliveries",
        "/v1/reports/deliveries-by-postcode-area",
        "/internal/v1/subjects/export",
        "/internal/v1/subjects/erase",
        "/internal/v1/subjects/restrict",
        "/internal/v1/subjects/rectify",
    ):
        assert path in paths, path
    create = paths["/v1/shipments"]["post"]
    assert "application/problem+json" in create["responses"]["422"]["content"]
    bulk_items = document["components"]["schemas"]["ShipmentBulkCreate"]["properties"]
    assert bulk_items["shipments"]["items"] == {"$ref": "#/components/schemas/ShipmentCreate"}


async def test_tracking_limit_is_shared_through_redis(
    shipping_settings: ShippingSettings, issuer: TokenIssuer
) -> None:
    settings = settings_for(shipping_settings, redis_url=REDIS_URL, tracking_rate_limit="2/minute")
    # Another process of the service: its own limiter on the same Redis database.
    other_process = RateLimiter.from_url(REDIS_URL, namespace="shipping")
    client_ip = "203.0.113.7"
    await other_process.clear("2/minute", "tracking", client_ip)
    async with start_shipping(settings, issuer) as shipping:
        code = (await shipping.create())["tracking_code"]
        first = await shipping.client.get(f"/v1/tracking/{code}")
        assert await other_process.hit("2/minute", "tracking", client_ip) == 0
        third = await shipping.client.get(f"/v1/tracking/{code}")
    await other_process.clear("2/minute", "tracking", client_ip)
    assert first.status_code == 200
    assert third.status_code == 429


async def test_development_purges_in_process(
    shipping_settings: ShippingSettings, issuer: TokenIssuer
) -> None:
    settings = settings_for(shipping_settings, purge_in_process=True, purge_interval_seconds=0.05)
    async with start_shipping(settings, issuer, committed=True) as shipping:
        try:
            shipment = await shipping.create()
            code = shipment["tracking_code"]
            for status in ("handed_to_carrier", "delivered"):
                await push_event(
                    shipping.client, "postnl", carrier_event(code, status, str(uuid.uuid4()))
                )
            shipping.clock.advance(timedelta(days=93))
            for _ in range(200):
                stored: Shipment = await shipping.stored(shipment["id"])
                if stored.recipient_name is None:
                    break
                await asyncio.sleep(0.02)
            assert stored.recipient_name is None
            assert stored.postcode_area == "3191"
        finally:
            await delete_account_rows(shipping.database, shipping.account_id)
