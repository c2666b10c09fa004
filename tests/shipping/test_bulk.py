"""Bulk create: up to 1,000 shipments, each accepted or refused on its own."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.engine import Engine

from services.shipping_api.models import Parcel, Shipment, ShipmentEvent
from services.shipping_api.shipments import service as shipment_service
from services.shipping_api.shipments.tracking_codes import new_tracking_code
from tests.shipping.conftest import Shipping
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


async def test_bulk_of_1000_is_stored_set_based(shipping: Shipping) -> None:
    items = [shipment_body(reference=f"PEAK-{i}", parcels=1 + i % 2) for i in range(1000)]
    inserts: list[str] = []

    def count_inserts(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.lstrip().upper().startswith("INSERT"):
            inserts.append(statement.split("(")[0].split()[-1])

    event.listen(Engine, "before_cursor_execute", count_inserts)
    try:
        response = await shipping.client.post(
            "/v1/shipments/bulk", json={"shipments": items}, headers=shipping.headers
        )
    finally:
        event.remove(Engine, "before_cursor_execute", count_inserts)
    assert response.status_code == 200
    assert response.json()["created"] == 1000
    async with shipping.session() as session:
        assert await session.scalar(select(func.count()).select_from(Shipment)) == 1000
        assert await session.scalar(select(func.count()).select_from(Parcel)) == 1500
        assert await session.scalar(select(func.count()).select_from(ShipmentEvent)) == 1000
        codes = (await session.scalars(select(Shipment.tracking_code))).all()
    assert len(set(codes)) == 1000
    # Set-based: a statement per table, not per shipment (the time budget is in bench/).
    assert {"shipments", "parcels", "shipment_events"} <= set(inserts), inserts
    assert len(inserts) < 10, inserts


async def test_item_whose_tracking_code_keeps_clashing_is_409_without_field_errors(
    shipping: Shipping, monkeypatch: pytest.MonkeyPatch
) -> None:
    taken = (await shipping.create(reference="EXISTING"))["tracking_code"]
    # Calls in order: item 0 and item 1 are prepared, the batch clashes on item 1, then each is
    # retried on its own: item 0 once (a fresh code), item 1 three times (the taken code).
    codes = iter([new_tracking_code(), taken, new_tracking_code(), taken, taken, taken])
    monkeypatch.setattr(shipment_service, "new_tracking_code", lambda: next(codes))
    response = await shipping.client.post(
        "/v1/shipments/bulk",
        json={"shipments": [shipment_body(reference="FRESH"), shipment_body(reference="CLASH")]},
        headers=shipping.headers,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["created"], body["failed"]) == (1, 1)
    fresh, clash = body["results"]
    assert fresh["status"] == 201
    assert fresh["shipment"]["tracking_code"] != taken
    assert clash["status"] == 409
    assert clash["shipment"] is None
    assert clash["errors"] is None
    assert "could not be stored" in clash["detail"]
    assert "send it again" in clash["detail"]
    async with shipping.session() as session:
        references = set((await session.scalars(select(Shipment.reference))).all())
    assert references == {"EXISTING", "FRESH"}
