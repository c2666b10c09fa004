"""Bulk create: up to 1,000 shipments, each accepted or refused on its own."""

from __future__ import annotations

import time

from sqlalchemy import func, select

from services.shipping_api.models import Parcel, Shipment, ShipmentEvent
from tests.shipping.conftest import Shipping
from tests.support.db import on_postgres
from tests.support.shipping_factories import shipment_body


async def test_one_bad_item_does_not_sink_the_rest(shipping: Shipping) -> None:
    items = [
        shipment_body(reference="OK-0"),
        shipment_body(recipient_changes={"postcode": "nope"}),
        shipment_body(reference="OK-2", parcels=2),
        shipment_body(carrier="ups", service="mailbox"),
        {"carrier": "postnl"},
    ]
    response = await shipping.client.post(
        "/v1/shipments/bulk", json={"shipments": items}, headers=shipping.headers
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["created"] == 2
    assert body["failed"] == 3
    results = body["results"]
    assert [r["index"] for r in results] == [0, 1, 2, 3, 4]
    assert [r["status"] for r in results] == [201, 422, 201, 422, 422]
    assert results[1]["errors"][0]["field"] == "recipient.postcode"
    assert results[3]["errors"][0]["field"] == "service"
    assert {e["field"] for e in results[4]["errors"]} >= {"recipient", "parcels"}
    assert results[2]["shipment"]["price"] == {"amount_cents": 990, "currency": "EUR"}
    async with shipping.session() as session:
        references = set((await session.scalars(select(Shipment.reference))).all())
    assert references == {"OK-0", "OK-2"}


async def test_more_than_1000_is_422(shipping: Shipping) -> None:
    response = await shipping.client.post(
        "/v1/shipments/bulk",
        json={"shipments": [shipment_body()] * 1001},
        headers=shipping.headers,
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "shipments"


async def test_bulk_of_1000_is_stored_set_based_and_fast(shipping: Shipping) -> None:
    items = [shipment_body(reference=f"PEAK-{i}", parcels=1 + i % 2) for i in range(1000)]
    started = time.perf_counter()
    response = await shipping.client.post(
        "/v1/shipments/bulk", json={"shipments": items}, headers=shipping.headers
    )
    elapsed = time.perf_counter() - started
    assert response.status_code == 200
    assert response.json()["created"] == 1000
    async with shipping.session() as session:
        assert await session.scalar(select(func.count()).select_from(Shipment)) == 1000
        assert await session.scalar(select(func.count()).select_from(Parcel)) == 1500
        assert await session.scalar(select(func.count()).select_from(ShipmentEvent)) == 1000
        codes = (await session.scalars(select(Shipment.tracking_code))).all()
    assert len(set(codes)) == 1000
    # The budget is for PostgreSQL; SQLite in a test transaction gets some slack.
    assert elapsed < (2.0 if on_postgres() else 4.0), elapsed
