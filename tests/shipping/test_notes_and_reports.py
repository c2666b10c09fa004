"""Support notes (staff only, audited) and the k-anonymous delivery report."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select, update

from libs.common.auth import Role, Scope
from services.shipping_api.models import Shipment, SupportAccess
from tests.shipping.conftest import Shipping
from tests.support.shipping_carriers import carrier_event, push_event
from tests.support.tokens import bearer


async def test_support_staff_add_and_read_notes_and_reads_are_audited(shipping: Shipping) -> None:
    shipment = await shipping.create()
    staff = shipping.staff(Role.SUPPORT, reason="Recipient on the phone (ticket 81)")
    created = await shipping.client.post(
        f"/v1/shipments/{shipment['id']}/notes",
        json={"channel": "phone", "body": "Asked to deliver at the neighbours, no. 24."},
        headers=staff,
    )
    assert created.status_code == 201, created.text
    assert created.json()["channel"] == "phone"
    listed = await shipping.client.get(f"/v1/shipments/{shipment['id']}/notes", headers=staff)
    assert listed.status_code == 200
    assert [n["body"] for n in listed.json()["data"]] == [
        "Asked to deliver at the neighbours, no. 24."
    ]
    async with shipping.session() as session:
        actions = (await session.scalars(select(SupportAccess.action))).all()
    assert actions == ["read_notes"]


async def test_notes_are_staff_only(shipping: Shipping) -> None:
    shipment = await shipping.create()
    path = f"/v1/shipments/{shipment['id']}/notes"
    assert (await shipping.client.get(path, headers=shipping.headers)).status_code == 403
    assert (
        await shipping.client.post(
            path, json={"channel": "chat", "body": "x"}, headers=shipping.headers
        )
    ).status_code == 403
    officer = shipping.staff(Role.PRIVACY_OFFICER)
    assert (await shipping.client.get(path, headers=officer)).status_code == 403
    unknown = await shipping.client.post(
        "/v1/shipments/01900000-0000-7000-8000-000000000000/notes",
        json={"channel": "chat", "body": "x"},
        headers=shipping.staff(Role.SUPPORT),
    )
    assert unknown.status_code == 404


async def deliver_many(shipping: Shipping, count: int, postcode: str, **changes: Any) -> None:
    for _ in range(count):
        shipment = await shipping.create(recipient_changes={"postcode": postcode}, **changes)
        code = shipment["tracking_code"]
        for status in ("handed_to_carrier", "delivered"):
            response = await push_event(
                shipping.client, "postnl", carrier_event(code, status, f"{code}{status}")
            )
            assert response.status_code == 200


async def report(shipping: Shipping, headers: dict[str, str]) -> Any:
    response = await shipping.client.get(
        "/v1/reports/deliveries-by-postcode-area?from=2026-11-01&to=2026-11-30", headers=headers
    )
    assert response.status_code == 200, response.text
    return response.json()


async def test_report_counts_per_area_and_suppresses_small_cells(shipping: Shipping) -> None:
    await deliver_many(shipping, 10, "3191 EE")
    await deliver_many(shipping, 1, "3192 AB", parcels=2)
    await deliver_many(shipping, 9, "1011 AB")
    body = await report(shipping, shipping.headers)
    assert body["from"] == "2026-11-01"
    assert body["scope"] == "account"
    assert body["k"] == 10
    assert body["areas"] == [
        {"country": "NL", "postcode_area": "3191", "delivered_parcels": 10, "shipments": 10}
    ]
    assert body["suppressed_areas"] == 2
    text = str(body)
    assert "Jan Jansen" not in text
    assert "Griede" not in text


async def test_report_leaves_out_restricted_subjects_and_other_accounts(
    shipping: Shipping,
) -> None:
    await deliver_many(shipping, 10, "3191 EE")
    async with shipping.session() as session:
        first = await session.scalar(select(Shipment.id).limit(1))
        await session.execute(
            update(Shipment).where(Shipment.id == first).values(is_restricted=True)
        )
        await session.commit()
    body = await report(shipping, shipping.headers)
    assert body["areas"] == []
    assert body["suppressed_areas"] == 1
    _, other = shipping.other_account()
    assert (await report(shipping, other))["suppressed_areas"] == 0


async def test_platform_report_is_for_administrators(shipping: Shipping) -> None:
    await deliver_many(shipping, 10, "3191 EE")
    admin = bearer(shipping.issuer.staff(Role.ADMIN))
    body = await report(shipping, admin)
    assert body["scope"] == "platform"
    assert body["areas"][0]["shipments"] == 10
    support = bearer(shipping.issuer.staff(Role.SUPPORT))
    response = await shipping.client.get(
        "/v1/reports/deliveries-by-postcode-area?from=2026-11-01&to=2026-11-30", headers=support
    )
    assert response.status_code == 403
    no_scope = bearer(shipping.issuer.api_keys.issue(shipping.account_id, [Scope.SHIPMENTS_READ]))
    response = await shipping.client.get(
        "/v1/reports/deliveries-by-postcode-area?from=2026-11-01&to=2026-11-30", headers=no_scope
    )
    assert response.status_code == 403


async def test_report_period_is_checked(shipping: Shipping) -> None:
    for query in ("from=2026-11-30&to=2026-11-01", "from=2025-01-01&to=2026-11-01", "from=x&to=y"):
        response = await shipping.client.get(
            f"/v1/reports/deliveries-by-postcode-area?{query}", headers=shipping.headers
        )
        assert response.status_code == 422, query


async def test_counts_stay_after_names_go(shipping: Shipping) -> None:
    from services.shipping_api.retention.service import purge_expired_recipients

    await deliver_many(shipping, 10, "3191 EE")
    before = await report(shipping, shipping.headers)
    shipping.clock.advance(timedelta(days=91))
    await purge_expired_recipients(
        shipping.database.sessionmaker, now=shipping.clock.now(), retention_days=90
    )
    assert await report(shipping, shipping.headers) == before


async def test_the_location_of_a_new_note_answers_it_and_the_read_is_audited(
    shipping: Shipping,
) -> None:
    shipment = await shipping.create()
    staff = shipping.staff(Role.SUPPORT, reason="Recipient on the phone (ticket 82)")
    created = await shipping.client.post(
        f"/v1/shipments/{shipment['id']}/notes",
        json={"channel": "email", "body": "Asked for a new delivery day."},
        headers=staff,
    )
    assert created.status_code == 201, created.text
    location = created.headers["location"]
    assert location == f"/v1/shipments/{shipment['id']}/notes/{created.json()['id']}"
    read = await shipping.client.get(location, headers=staff)
    assert read.status_code == 200
    assert read.json() == created.json()
    async with shipping.session() as session:
        reads = (await session.execute(select(SupportAccess.action, SupportAccess.reason))).all()
    assert [tuple(row) for row in reads] == [("read_note", "Recipient on the phone (ticket 82)")]


async def test_a_note_is_found_under_its_own_shipment_only(shipping: Shipping) -> None:
    shipment = await shipping.create()
    other = await shipping.create()
    staff = shipping.staff(Role.SUPPORT, reason="Recipient on the phone (ticket 83)")
    created = await shipping.client.post(
        f"/v1/shipments/{shipment['id']}/notes",
        json={"channel": "chat", "body": "Wants a signature on delivery."},
        headers=staff,
    )
    elsewhere = await shipping.client.get(
        f"/v1/shipments/{other['id']}/notes/{created.json()['id']}", headers=staff
    )
    assert elsewhere.status_code == 404
    assert elsewhere.json()["detail"] == "No support note with this id on this shipment."
    holder = await shipping.client.get(created.headers["location"], headers=shipping.headers)
    assert holder.status_code == 403
    no_reason = await shipping.client.get(
        created.headers["location"], headers=shipping.staff(Role.SUPPORT, reason=None)
    )
    assert no_reason.status_code == 422
    assert no_reason.json()["errors"][0]["field"] == "X-Access-Reason"
