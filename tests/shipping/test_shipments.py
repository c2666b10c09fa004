"""Creating, listing, reading and cancelling shipments."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select

from libs.common.auth import Role, Scope
from services.shipping_api.models import Parcel, ShipmentEvent, SupportAccess
from services.shipping_api.shipments.tracking_codes import normalise_tracking_code
from tests.shipping.conftest import Shipping
from tests.support.shipping_factories import parcel, shipment_body
from tests.support.tokens import bearer


async def test_create_returns_201_with_tracking_code_status_and_price(shipping: Shipping) -> None:
    response = await shipping.client.post(
        "/v1/shipments", json=shipment_body(), headers=shipping.headers
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert response.headers["location"] == f"/v1/shipments/{body['id']}"
    assert body["status"] == "created"
    assert body["price"] == {"amount_cents": 495, "currency": "EUR"}
    assert normalise_tracking_code(body["tracking_code"]) == body["tracking_code"]
    assert body["mode"] == "live"
    # Normalised as identity normalises: postcode, phone.
    assert body["recipient"]["postcode"] == "3191 EE"
    assert body["recipient"]["phone"] == "+31612345678"
    assert body["parcels"] == [
        {"sequence": 1, "weight_grams": 1200, "length_cm": 40, "width_cm": 30, "height_cm": 20}
    ]


async def test_multi_collo_shipment_is_priced_per_parcel(shipping: Shipping) -> None:
    body = await shipping.create(
        parcels=3,
        service="signature",
        carrier="dhl",
        recipient_changes={"country": "DE", "postcode": "10115"},
    )
    assert body["parcel_count"] == 3
    assert [p["sequence"] for p in body["parcels"]] == [1, 2, 3]
    # DHL signature to zone EU1, up to 2 kg: 945 + 95 surcharge, three times.
    assert body["price"]["amount_cents"] == 3 * (945 + 95)
    async with shipping.session() as session:
        count = await session.scalar(
            select(func.count())
            .select_from(Parcel)
            .where(Parcel.shipment_id == uuid.UUID(body["id"]))
        )
    assert count == 3


async def test_every_shipment_starts_with_a_created_event(shipping: Shipping) -> None:
    body = await shipping.create()
    events = await shipping.client.get(
        f"/v1/shipments/{body['id']}/events", headers=shipping.headers
    )
    assert events.status_code == 200
    assert [e["status"] for e in events.json()["data"]] == ["created"]


async def test_bad_dutch_postcode_is_422_naming_the_field(shipping: Shipping) -> None:
    response = await shipping.client.post(
        "/v1/shipments",
        json=shipment_body(recipient_changes={"postcode": "ABCD 12"}),
        headers=shipping.headers,
    )
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert [e["field"] for e in response.json()["errors"]] == ["recipient.postcode"]


async def test_bad_phone_and_email_are_422_naming_the_fields(shipping: Shipping) -> None:
    response = await shipping.client.post(
        "/v1/shipments",
        json=shipment_body(recipient_changes={"phone": "12", "email": "not-an-address"}),
        headers=shipping.headers,
    )
    assert response.status_code == 422
    fields = {e["field"] for e in response.json()["errors"]}
    assert fields == {"recipient.phone", "recipient.email"}


async def test_unknown_fields_are_refused(shipping: Shipping) -> None:
    response = await shipping.client.post(
        "/v1/shipments",
        json=shipment_body(account_id=str(uuid.uuid4())),
        headers=shipping.headers,
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "account_id"


async def test_service_the_carrier_does_not_offer_is_422(shipping: Shipping) -> None:
    response = await shipping.client.post(
        "/v1/shipments",
        json=shipment_body(carrier="ups", service="evening"),
        headers=shipping.headers,
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "service"


async def test_service_not_offered_to_the_country_is_422(shipping: Shipping) -> None:
    response = await shipping.client.post(
        "/v1/shipments",
        json=shipment_body(
            service="evening", recipient_changes={"country": "BE", "postcode": "1000"}
        ),
        headers=shipping.headers,
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "recipient.country"


async def test_parcels_beyond_the_carriers_limits_are_422(shipping: Shipping) -> None:
    response = await shipping.client.post(
        "/v1/shipments",
        json=shipment_body(
            carrier="dhl",
            parcels=1,
        )
        | {"parcels": [parcel(weight_grams=32_000), parcel(length_cm=130, width_cm=20)]},
        headers=shipping.headers,
    )
    assert response.status_code == 422
    fields = {e["field"] for e in response.json()["errors"]}
    assert fields == {"parcels.0.weight_grams", "parcels.1.length_cm"}


async def test_mailbox_parcel_must_fit_the_letterbox(shipping: Shipping) -> None:
    response = await shipping.client.post(
        "/v1/shipments",
        json=shipment_body(service="mailbox")
        | {"parcels": [parcel(length_cm=30, width_cm=20, height_cm=10)]},
        headers=shipping.headers,
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "parcels.0.height_cm"
    ok = await shipping.client.post(
        "/v1/shipments",
        json=shipment_body(service="mailbox")
        | {"parcels": [parcel(weight_grams=500, length_cm=30, width_cm=20, height_cm=3)]},
        headers=shipping.headers,
    )
    assert ok.status_code == 201
    assert ok.json()["price"]["amount_cents"] == 425


async def test_key_without_write_scope_cannot_create(shipping: Shipping) -> None:
    key = shipping.issuer.api_keys.issue(shipping.account_id, [Scope.SHIPMENTS_READ.value])
    response = await shipping.client.post(
        "/v1/shipments", json=shipment_body(), headers=bearer(key)
    )
    assert response.status_code == 403


async def test_anonymous_caller_gets_401(shipping: Shipping) -> None:
    response = await shipping.client.get("/v1/shipments")
    assert response.status_code == 401


async def test_other_accounts_shipment_is_404(shipping: Shipping) -> None:
    body = await shipping.create()
    _, other = shipping.other_account()
    for method, path in (
        ("GET", f"/v1/shipments/{body['id']}"),
        ("GET", f"/v1/shipments/{body['id']}/events"),
        ("POST", f"/v1/shipments/{body['id']}/cancel"),
        ("GET", f"/v1/shipments/{body['id']}/label"),
    ):
        response = await shipping.client.request(method, path, headers=other)
        assert response.status_code == 404, (method, path, response.text)
    listed = await shipping.client.get("/v1/shipments", headers=other)
    assert listed.json()["data"] == []


async def test_list_pages_with_a_cursor_newest_first(shipping: Shipping) -> None:
    created = [await shipping.create(reference=f"R-{i}") for i in range(5)]
    first = await shipping.client.get("/v1/shipments?limit=2", headers=shipping.headers)
    assert first.status_code == 200
    page = first.json()
    assert [s["reference"] for s in page["data"]] == ["R-4", "R-3"]
    seen = [s["id"] for s in page["data"]]
    cursor = page["next_cursor"]
    while cursor:
        more = await shipping.client.get(
            f"/v1/shipments?limit=2&cursor={cursor}", headers=shipping.headers
        )
        seen += [s["id"] for s in more.json()["data"]]
        cursor = more.json()["next_cursor"]
    assert seen == [s["id"] for s in reversed(created)]


async def test_list_filters_by_status_carrier_reference_and_time(shipping: Shipping) -> None:
    from datetime import timedelta

    a = await shipping.create(reference="A", carrier="dpd")
    shipping.clock.advance(timedelta(hours=1))
    b = await shipping.create(reference="B")
    await shipping.client.post(f"/v1/shipments/{b['id']}/cancel", headers=shipping.headers)

    async def ids(query: str) -> list[str]:
        response = await shipping.client.get(f"/v1/shipments?{query}", headers=shipping.headers)
        assert response.status_code == 200, response.text
        return [s["id"] for s in response.json()["data"]]

    assert await ids("status=cancelled") == [b["id"]]
    assert await ids("carrier=dpd") == [a["id"]]
    assert await ids("reference=A") == [a["id"]]
    assert await ids(f"tracking_code={b['tracking_code']}") == [b["id"]]
    boundary = (shipping.clock.now() - timedelta(minutes=30)).isoformat().replace("+00:00", "Z")
    assert await ids(f"created_from={boundary}") == [b["id"]]
    assert await ids(f"created_to={boundary}") == [a["id"]]
    bad = await shipping.client.get("/v1/shipments?status=lost", headers=shipping.headers)
    assert bad.status_code == 422


async def test_cancel_before_handover_and_409_after(shipping: Shipping) -> None:
    body = await shipping.create(headers=shipping.test_headers)
    cancelled = await shipping.client.post(
        f"/v1/shipments/{body['id']}/cancel", headers=shipping.test_headers
    )
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"
    again = await shipping.client.post(
        f"/v1/shipments/{body['id']}/cancel", headers=shipping.test_headers
    )
    assert again.status_code == 409

    handed = await shipping.create(headers=shipping.test_headers)
    for _ in range(2):
        await shipping.client.post(
            f"/v1/shipments/{handed['id']}/simulate", headers=shipping.test_headers
        )
    assert (await shipping.stored(handed["id"])).status == "handed_to_carrier"
    late = await shipping.client.post(
        f"/v1/shipments/{handed['id']}/cancel", headers=shipping.test_headers
    )
    assert late.status_code == 409
    assert late.json()["type"].endswith("illegal-transition")


async def test_support_staff_can_read_any_shipment_and_it_is_audited(shipping: Shipping) -> None:
    body = await shipping.create()
    headers = shipping.staff(Role.SUPPORT, reason="Recipient called: parcel late (ticket 77)")
    response = await shipping.client.get(f"/v1/shipments/{body['id']}", headers=headers)
    assert response.status_code == 200
    assert response.json()["recipient"]["name"] == "Jan Jansen"
    async with shipping.session() as session:
        entries = (await session.scalars(select(SupportAccess))).all()
    assert len(entries) == 1
    assert entries[0].action == "read_shipment"
    assert entries[0].shipment_id == uuid.UUID(body["id"])
    assert entries[0].account_id == shipping.account_id
    assert entries[0].reason == "Recipient called: parcel late (ticket 77)"
    assert entries[0].accessed_at == shipping.clock.now()


async def test_staff_must_say_why(shipping: Shipping) -> None:
    body = await shipping.create()
    response = await shipping.client.get(
        f"/v1/shipments/{body['id']}", headers=shipping.staff(Role.SUPPORT, reason=None)
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "X-Access-Reason"


async def test_other_staff_roles_cannot_read_shipments(shipping: Shipping) -> None:
    body = await shipping.create()
    response = await shipping.client.get(
        f"/v1/shipments/{body['id']}", headers=shipping.staff(Role.PRIVACY_OFFICER)
    )
    assert response.status_code == 403


async def test_staff_list_needs_an_account_or_tracking_code(shipping: Shipping) -> None:
    body = await shipping.create()
    headers = shipping.staff(Role.SUPPORT)
    assert (await shipping.client.get("/v1/shipments", headers=headers)).status_code == 422
    found = await shipping.client.get(
        f"/v1/shipments?tracking_code={body['tracking_code'].lower()}", headers=headers
    )
    assert found.status_code == 200
    assert [s["id"] for s in found.json()["data"]] == [body["id"]]


async def test_sandbox_key_makes_test_shipments(shipping: Shipping) -> None:
    body = await shipping.create(headers=shipping.test_headers)
    assert body["mode"] == "test"
    async with shipping.session() as session:
        statuses = (
            await session.scalars(
                select(ShipmentEvent.status).where(
                    ShipmentEvent.shipment_id == uuid.UUID(body["id"])
                )
            )
        ).all()
    assert statuses == ["created"]
