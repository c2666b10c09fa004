"""Carrier events by the carrier's time: late reports take their place in the history without
moving the status back, dates are the carrier's, and events after an erasure bring no one back."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from services.shipping_api.models import RecipientMail, ShipmentEvent, WebhookDelivery
from services.shipping_api.recipients.erasure import erase_shipments
from services.shipping_api.vocabulary import STATUS_DESCRIPTIONS, ShipmentStatus
from tests.shipping.conftest import Shipping
from tests.support.shipping_carriers import carrier_event, push_event

REPORTED_AT = datetime(2026, 11, 25, 18, 0, tzinfo=UTC)
"""When the carrier's batch arrives: after everything it reports."""


async def push_all(shipping: Shipping, code: str, *events: tuple[str, str, str]) -> None:
    for event_id, status, occurred_at in events:
        response = await push_event(
            shipping.client,
            "postnl",
            carrier_event(code, status, event_id, occurred_at=occurred_at),
        )
        assert response.status_code == 200, response.text


async def history(shipping: Shipping, shipment_id: str) -> list[tuple[str, str]]:
    response = await shipping.client.get(
        f"/v1/shipments/{shipment_id}/events", headers=shipping.headers
    )
    assert response.status_code == 200
    return [(e["status"], e["occurred_at"]) for e in response.json()["data"][1:]]


async def shipment_status(shipping: Shipping, shipment_id: str) -> dict[str, Any]:
    response = await shipping.client.get(f"/v1/shipments/{shipment_id}", headers=shipping.headers)
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


async def test_a_late_scan_takes_its_place_and_leaves_the_later_status(shipping: Shipping) -> None:
    body = await shipping.create()
    shipping.clock.set(REPORTED_AT)
    await push_all(
        shipping,
        body["tracking_code"],
        ("a", "handed_to_carrier", "2026-11-25T09:30:00Z"),
        ("b", "out_for_delivery", "2026-11-25T10:00:00Z"),
        ("c", "delivery_failed", "2026-11-25T12:00:00Z"),
        ("d", "in_transit", "2026-11-25T09:45:00Z"),  # the sorting scan, reported last
    )

    assert await history(shipping, body["id"]) == [
        ("handed_to_carrier", "2026-11-25T09:30:00Z"),
        ("in_transit", "2026-11-25T09:45:00Z"),
        ("out_for_delivery", "2026-11-25T10:00:00Z"),
        ("delivery_failed", "2026-11-25T12:00:00Z"),
    ]
    shipment = await shipment_status(shipping, body["id"])
    assert shipment["status"] == "delivery_failed"
    assert shipment["status_changed_at"] == "2026-11-25T12:00:00Z"


async def test_the_history_shows_when_each_event_was_received(shipping: Shipping) -> None:
    """A late scan is told apart by its ``recorded_at``: the time it reached us."""
    body = await shipping.create()
    code = body["tracking_code"]
    shipping.clock.set(datetime(2026, 11, 25, 9, 31, tzinfo=UTC))
    await push_all(shipping, code, ("a", "handed_to_carrier", "2026-11-25T09:30:00Z"))
    shipping.clock.set(datetime(2026, 11, 25, 12, 1, tzinfo=UTC))
    await push_all(shipping, code, ("b", "out_for_delivery", "2026-11-25T12:00:00Z"))
    shipping.clock.set(REPORTED_AT)
    await push_all(shipping, code, ("c", "in_transit", "2026-11-25T10:00:00Z"))

    response = await shipping.client.get(
        f"/v1/shipments/{body['id']}/events", headers=shipping.headers
    )
    assert response.status_code == 200
    assert [
        (e["status"], e["occurred_at"], e["recorded_at"]) for e in response.json()["data"][1:]
    ] == [
        ("handed_to_carrier", "2026-11-25T09:30:00Z", "2026-11-25T09:31:00Z"),
        ("in_transit", "2026-11-25T10:00:00Z", "2026-11-25T18:00:00Z"),
        ("out_for_delivery", "2026-11-25T12:00:00Z", "2026-11-25T12:01:00Z"),
    ]


async def out_for_delivery_at_noon(shipping: Shipping) -> tuple[dict[str, Any], str]:
    """A shipment handed over at 09:30 and out for delivery at 12:00, as reported later."""
    body = await shipping.create()
    code = body["tracking_code"]
    shipping.clock.set(REPORTED_AT)
    await push_all(
        shipping,
        code,
        ("a", "handed_to_carrier", "2026-11-25T09:30:00Z"),
        ("b", "out_for_delivery", "2026-11-25T12:00:00Z"),
    )
    return body, code


async def test_a_late_scan_the_machine_would_refuse_now_is_recorded_not_409(
    shipping: Shipping,
) -> None:
    body, code = await out_for_delivery_at_noon(shipping)

    late = await push_event(
        shipping.client,
        "postnl",
        carrier_event(code, "in_transit", "c", occurred_at="2026-11-25T10:00:00Z"),
    )

    assert late.status_code == 200, late.text
    assert late.json()["duplicate"] is False
    assert late.json()["shipment_status"] == "out_for_delivery"
    assert ("in_transit", "2026-11-25T10:00:00Z") in await history(shipping, body["id"])
    # A late event is history, not news: the recipient is not mailed "in transit" again.
    async with shipping.session() as session:
        mailed = (
            await session.scalars(
                select(RecipientMail.status).where(
                    RecipientMail.shipment_id == uuid.UUID(body["id"])
                )
            )
        ).all()
    assert sorted(mailed) == ["handed_to_carrier", "out_for_delivery"]


async def test_a_scan_that_is_not_late_still_follows_the_status_machine(
    shipping: Shipping,
) -> None:
    _, code = await out_for_delivery_at_noon(shipping)

    newer = await push_event(
        shipping.client,
        "postnl",
        carrier_event(code, "in_transit", "c", occurred_at="2026-11-25T13:00:00Z"),
    )

    assert newer.status_code == 409
    assert newer.json()["type"].endswith("illegal-transition")


async def test_delivered_at_is_when_the_carrier_delivered(shipping: Shipping) -> None:
    body = await shipping.create()
    shipping.clock.set(REPORTED_AT)  # a carrier that uploads its scans in the evening
    await push_all(
        shipping,
        body["tracking_code"],
        ("a", "handed_to_carrier", "2026-11-25T09:30:00Z"),
        ("b", "out_for_delivery", "2026-11-25T10:00:00Z"),
        ("c", "delivered", "2026-11-25T11:30:00Z"),
    )

    view = (await shipping.client.get(f"/v1/tracking/{body['tracking_code']}")).json()

    assert view["status"] == "delivered"
    assert view["delivered_at"] == "2026-11-25T11:30:00Z"
    assert view["status_changed_at"] == "2026-11-25T11:30:00Z"
    assert (await shipping.stored(body["id"])).final_at == datetime(
        2026, 11, 25, 11, 30, tzinfo=UTC
    )


async def test_an_event_from_the_future_is_recorded_at_the_time_it_arrives(
    shipping: Shipping,
) -> None:
    body = await shipping.create()
    shipping.clock.set(REPORTED_AT)
    await push_all(
        shipping, body["tracking_code"], ("a", "handed_to_carrier", "2026-11-25T19:30:00Z")
    )

    assert await history(shipping, body["id"]) == [("handed_to_carrier", "2026-11-25T18:00:00Z")]


async def test_an_event_after_the_erasure_brings_no_recipient_data_back(
    shipping: Shipping,
) -> None:
    response = await shipping.client.post(
        "/v1/webhook-endpoints",
        json={"url": "https://shop.example.nl/hook", "events": ["shipment.delivered"]},
        headers=shipping.headers,
    )
    assert response.status_code == 201, response.text
    body = await shipping.create(reference="ORDER-1001")
    code = body["tracking_code"]
    shipping.clock.set(REPORTED_AT)
    await push_all(shipping, code, ("a", "handed_to_carrier", "2026-11-25T09:30:00Z"))
    async with shipping.session() as session:
        await erase_shipments(session, [uuid.UUID(body["id"])], now=shipping.clock.now())
        await session.commit()

    delivered = await push_event(
        shipping.client,
        "postnl",
        carrier_event(
            code,
            "delivered",
            "b",
            occurred_at="2026-11-25T11:00:00Z",
            city="Hoogvliet Rotterdam",
            description="Bezorgd bij Jan Jansen, Dorpsstraat 24",
        ),
    )

    assert delivered.status_code == 200, delivered.text
    assert delivered.json()["shipment_status"] == "delivered"
    async with shipping.session() as session:
        event = await session.scalar(
            select(ShipmentEvent).where(ShipmentEvent.carrier_event_id == "b")
        )
        payloads = (await session.scalars(select(WebhookDelivery.payload))).all()
    assert event is not None
    assert event.city is None
    assert event.description == STATUS_DESCRIPTIONS[ShipmentStatus.DELIVERED]
    assert len(payloads) == 1
    assert payloads[0] is not None
    data = payloads[0]["data"]
    assert data["event"]["city"] is None
    assert data["event"]["description"] == STATUS_DESCRIPTIONS[ShipmentStatus.DELIVERED]
    assert data["shipment"]["reference"] is None
    assert "Hoogvliet" not in str(payloads[0])
    assert "Jansen" not in str(payloads[0])


async def test_a_late_scan_is_announced_at_its_own_time_with_the_current_status(
    shipping: Shipping,
) -> None:
    response = await shipping.client.post(
        "/v1/webhook-endpoints",
        json={"url": "https://shop.example.nl/hook", "events": ["shipment.in_transit"]},
        headers=shipping.headers,
    )
    assert response.status_code == 201, response.text
    body = await shipping.create()
    shipping.clock.set(REPORTED_AT)
    await push_all(
        shipping,
        body["tracking_code"],
        ("a", "handed_to_carrier", "2026-11-25T09:30:00Z"),
        ("b", "delivered", "2026-11-25T12:00:00Z"),
        ("c", "in_transit", "2026-11-25T10:00:00Z"),
    )

    async with shipping.session() as session:
        payloads = (await session.scalars(select(WebhookDelivery.payload))).all()
    assert len(payloads) == 1
    assert payloads[0] is not None
    data = payloads[0]["data"]
    assert data["event"]["status"] == "in_transit"
    assert data["event"]["occurred_at"] == "2026-11-25T10:00:00+00:00"
    assert data["shipment"]["status"] == "delivered"
