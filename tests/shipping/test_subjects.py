"""The internal data-subject API of decision 0004: export, erase, restrict, rectify."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import orjson
from sqlalchemy import func, select

from libs.common.auth import Role, ServiceScope
from services.shipping_api.models import (
    IdempotencyKey,
    RequestLog,
    Shipment,
    SubjectRestriction,
    SupportAccess,
    SupportNote,
    WebhookDelivery,
    WebhookEndpoint,
)
from services.shipping_api.notifications.outbox import MailState
from tests.shipping.conftest import Shipping
from tests.support.shipping_carriers import carrier_event, push_event
from tests.support.shipping_factories import shipment_body
from tests.support.shipping_receiver import Receiver
from tests.support.tokens import bearer

JAN = {"email": "Jan.Jansen@EXAMPLE.nl"}


async def call(shipping: Shipping, action: str, body: dict[str, Any]) -> Any:
    response = await shipping.client.post(
        f"/internal/v1/subjects/{action}", json=body, headers=shipping.service()
    )
    assert response.status_code == 200, response.text
    return response


def lines(response: Any) -> list[dict[str, Any]]:
    """The exported records (a table's description line carries no ``record``)."""
    parsed = [orjson.loads(line) for line in response.content.splitlines() if line]
    return [line for line in parsed if "record" in line]


async def two_recipients(shipping: Shipping) -> tuple[dict[str, Any], dict[str, Any]]:
    jan = await shipping.create()
    piet = await shipping.create(
        recipient_changes={
            "name": "Piet Peters",
            "email": "piet@example.nl",
            "phone": "+31687654321",
        }
    )
    return jan, piet


async def test_internal_routes_need_a_service_token_with_the_scope(shipping: Shipping) -> None:
    body = {"subject": JAN, "request_id": "r-1"}
    for headers in (
        shipping.headers,
        bearer(shipping.issuer.user(shipping.account_id)),
        {},
    ):
        response = await shipping.client.post(
            "/internal/v1/subjects/export", json=body, headers=headers
        )
        assert response.status_code == 401
    wrong_scope = shipping.service([ServiceScope.CONSENTS_READ])
    response = await shipping.client.post(
        "/internal/v1/subjects/erase", json=body, headers=wrong_scope
    )
    assert response.status_code == 403


async def test_subject_needs_someone_and_request_id(shipping: Shipping) -> None:
    response = await shipping.client.post(
        "/internal/v1/subjects/erase",
        json={"subject": {}, "request_id": "r"},
        headers=shipping.service(),
    )
    assert response.status_code == 422
    response = await shipping.client.post(
        "/internal/v1/subjects/erase",
        json={"subject": {"email": "not an address"}, "request_id": "r"},
        headers=shipping.service(),
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "subject.email"


async def test_export_finds_a_recipient_by_email_or_phone_through_the_blind_index(
    shipping: Shipping,
) -> None:
    jan, piet = await two_recipients(shipping)
    response = await call(shipping, "export", {"subject": JAN, "request_id": "x-1"})
    assert response.headers["content-type"] == "application/x-ndjson"
    records = lines(response)
    shipments = [r for r in records if r["table"] == "shipments"]
    assert [r["record"]["id"] for r in shipments] == [jan["id"]]
    record = shipments[0]["record"]
    assert record["recipient_name"] == "Jan Jansen"
    assert record["recipient_email_index"] == "[stored, not disclosed]"
    assert {r["table"] for r in records} >= {"shipments", "parcels", "shipment_events"}
    assert all(set(r) == {"category", "table", "record"} for r in records)
    by_phone = lines(
        await call(shipping, "export", {"subject": {"phone": "0687654321"}, "request_id": "x"})
    )
    assert [r["record"]["id"] for r in by_phone if r["table"] == "shipments"] == [piet["id"]]


async def test_export_of_nobody_is_an_empty_body(shipping: Shipping) -> None:
    await shipping.create()
    response = await call(
        shipping, "export", {"subject": {"email": "nobody@example.nl"}, "request_id": "x-2"}
    )
    assert response.content == b""


async def test_export_of_an_account_covers_shipments_notes_webhooks_and_request_log(
    shipping: Shipping,
) -> None:
    from datetime import UTC, datetime

    await shipping.client.post(
        "/v1/webhook-endpoints",
        json={"url": "https://shop.example.nl/hook", "events": ["shipment.created"]},
        headers=shipping.headers,
    )
    shipment = await shipping.create()
    async with shipping.session() as session:
        session.add(
            SupportNote(
                shipment_id=uuid.UUID(shipment["id"]),
                account_id=shipping.account_id,
                author_staff_id=uuid.uuid4(),
                channel="email",
                body="Shop asked about a late parcel",
                created_at=shipping.clock.now(),
            )
        )
        session.add(
            RequestLog(
                ip="198.51.100.1",
                timestamp=datetime.now(UTC),
                duration_ms=1.0,
                method="GET",
                host="api",
                port=443,
                path="/v1/shipments",
                status=200,
                request_size=0,
                response_size=10,
                request_id="q",
                service="shipping",
                account_id=shipping.account_id,
            )
        )
        await session.commit()
    records = lines(
        await call(
            shipping,
            "export",
            {"subject": {"account_id": str(shipping.account_id)}, "request_id": "x-3"},
        )
    )
    tables = {r["table"] for r in records}
    assert tables >= {
        "shipments",
        "support_notes",
        "webhook_endpoints",
        "webhook_deliveries",
        "request_log",
    }
    endpoint = next(r for r in records if r["table"] == "webhook_endpoints")["record"]
    assert endpoint["secret_ciphertext"] == "[stored, not disclosed]"


async def test_export_of_an_account_holds_staff_reads_of_its_shipment_list(
    shipping: Shipping,
) -> None:
    shipment = await shipping.create()
    staff = shipping.staff(Role.SUPPORT, reason="Shop called about invoice 2026-113")
    listed = await shipping.client.get(
        "/v1/shipments", params={"account_id": str(shipping.account_id)}, headers=staff
    )
    assert listed.status_code == 200
    read = await shipping.client.get(f"/v1/shipments/{shipment['id']}", headers=staff)
    assert read.status_code == 200
    other_account, _ = shipping.other_account()
    elsewhere = await shipping.client.get(
        "/v1/shipments", params={"account_id": str(other_account)}, headers=staff
    )
    assert elsewhere.status_code == 200

    records = lines(
        await call(
            shipping,
            "export",
            {"subject": {"account_id": str(shipping.account_id)}, "request_id": "x-5"},
        )
    )
    reads = [r for r in records if r["table"] == "support_access_log"]
    assert all(r["category"] == "support_access" for r in reads)
    assert sorted(
        (r["record"]["action"], r["record"]["shipment_id"], r["record"]["reason"]) for r in reads
    ) == [
        ("list_shipments", None, "Shop called about invoice 2026-113"),
        ("read_shipment", shipment["id"], "Shop called about invoice 2026-113"),
    ]
    assert {r["record"]["account_id"] for r in reads} == {str(shipping.account_id)}

    answer = (
        await call(
            shipping,
            "erase",
            {"subject": {"account_id": str(shipping.account_id)}, "request_id": "e-5"},
        )
    ).json()
    assert ("support_access_log", "staff_id") in {(k["table"], k["field"]) for k in answer["kept"]}
    async with shipping.session() as session:
        rows = (
            await session.execute(
                select(SupportAccess.account_id, SupportAccess.reason, SupportAccess.staff_id)
            )
        ).all()
    # The account's entries keep who read when (accountability), the reason text goes; the
    # other account's entry is untouched.
    assert sorted((row.account_id == other_account, row.reason) for row in rows) == [
        (False, "[erased]"),
        (False, "[erased]"),
        (True, "Shop called about invoice 2026-113"),
    ]
    assert all(row.staff_id for row in rows)


async def test_export_holds_the_stored_idempotent_responses_of_the_account_and_recipient(
    shipping: Shipping,
) -> None:
    created = await shipping.client.post(
        "/v1/shipments",
        json=_body(7),
        headers={**shipping.headers, "Idempotency-Key": "order-7"},
    )
    assert created.status_code == 201
    shipment_id = created.json()["id"]
    hook = await shipping.client.post(
        "/v1/webhook-endpoints",
        json={"url": "https://shop.example.nl/hook", "events": ["shipment.created"]},
        headers={**shipping.headers, "Idempotency-Key": "hook-1"},
    )
    assert hook.status_code == 201
    _, other = shipping.other_account()
    theirs = await shipping.client.post(
        "/v1/shipments",
        json=shipment_body(recipient_changes={"name": "Piet Peters", "email": "piet@example.nl"}),
        headers={**other, "Idempotency-Key": "order-7"},
    )
    assert theirs.status_code == 201

    for subject, expected in (
        ({"account_id": str(shipping.account_id)}, ["hook-1", "order-7"]),
        (JAN, ["order-7"]),
    ):
        response = await call(shipping, "export", {"subject": subject, "request_id": "x-6"})
        assert hook.json()["secret"] not in response.text
        records = lines(response)
        stored = [r for r in records if r["table"] == "idempotency_keys"]
        assert sorted(r["record"]["key"] for r in stored) == expected
        assert {r["category"] for r in stored} == {"shipments"}
        record = next(r["record"] for r in stored if r["record"]["key"] == "order-7")
        assert record["resource_id"] == shipment_id
        body = orjson.loads(record["response_body"])
        assert body["id"] == shipment_id
        assert body["recipient"]["name"] == "Jan Jansen"

    answer = (await call(shipping, "erase", {"subject": JAN, "request_id": "e-6"})).json()
    assert answer["erased"]["idempotency_keys"] == 1
    async with shipping.session() as session:
        left = (await session.scalars(select(IdempotencyKey.resource_id))).all()
    assert sorted(left) == sorted(uuid.UUID(made.json()["id"]) for made in (hook, theirs))


async def test_export_streams_in_batches(shipping: Shipping) -> None:
    for start in (0, 600):
        payload = {"shipments": [_body(i) for i in range(start, start + 600)]}
        response = await shipping.client.post(
            "/v1/shipments/bulk", json=payload, headers=shipping.headers
        )
        assert response.json()["created"] == 600
    records = lines(
        await call(
            shipping,
            "export",
            {"subject": {"account_id": str(shipping.account_id)}, "request_id": "x-4"},
        )
    )
    ids = [r["record"]["id"] for r in records if r["table"] == "shipments"]
    assert len(ids) == len(set(ids)) == 1200


def _body(index: int) -> dict[str, Any]:
    return shipment_body(reference=f"E-{index}")


async def test_erase_masks_the_recipient_everywhere_and_keeps_the_counts(
    shipping: Shipping,
) -> None:
    jan, piet = await two_recipients(shipping)
    code = jan["tracking_code"]
    await push_event(shipping.client, "postnl", carrier_event(code, "handed_to_carrier", "h"))
    answer = (await call(shipping, "erase", {"subject": JAN, "request_id": "e-1"})).json()
    assert answer["service"] == "shipping"
    assert answer["erased"]["shipments"] == 1
    assert answer["erased"]["shipment_events"] == 2
    kept = {(k["table"], k["field"]) for k in answer["kept"]}
    assert ("shipments", "account_id") in kept
    assert all(k["reason"] for k in answer["kept"])

    erased = await shipping.stored(jan["id"])
    for column in (
        "recipient_name",
        "recipient_street",
        "recipient_house_number",
        "recipient_postcode",
        "recipient_city",
        "recipient_email",
        "recipient_phone",
        "recipient_email_index",
        "reference",
    ):
        assert getattr(erased, column) is None, column
    assert erased.tracking_code == code
    assert erased.status == "handed_to_carrier"
    assert erased.postcode_area == "3191"
    assert erased.price_cents == jan["price"]["amount_cents"]
    assert erased.created_at is not None
    # The other recipient is untouched.
    assert (await shipping.stored(piet["id"])).recipient_name == "Piet Peters"
    # Nothing is mailed to an erased recipient any more.
    await push_event(shipping.client, "postnl", carrier_event(code, "out_for_delivery", "o"))
    await shipping.app.state.recipient_mail.run_once(shipping.clock.now())
    from services.shipping_api.models import RecipientMail

    async with shipping.session() as session:
        states = set((await session.scalars(select(RecipientMail.state))).all())
    assert states == {MailState.SKIPPED}


async def test_erase_repeated_with_the_same_request_id_gives_the_same_answer(
    shipping: Shipping,
) -> None:
    await two_recipients(shipping)
    first = (await call(shipping, "erase", {"subject": JAN, "request_id": "e-2"})).json()
    again = (await call(shipping, "erase", {"subject": JAN, "request_id": "e-2"})).json()
    assert again == first
    fresh = (await call(shipping, "erase", {"subject": JAN, "request_id": "e-3"})).json()
    assert fresh["erased"] == {}


async def test_erase_of_an_account(shipping: Shipping) -> None:
    await shipping.create()
    registered = await shipping.client.post(
        "/v1/webhook-endpoints",
        json={"url": "https://shop.example.nl/hook", "events": ["shipment.created"]},
        headers=shipping.headers,
    )
    # In a secret rotation's overlap: the secret before is a credential of the account too.
    rotated = await shipping.client.post(
        f"/v1/webhook-endpoints/{registered.json()['id']}/rotate-secret", headers=shipping.headers
    )
    assert rotated.status_code == 200
    other_account, other = shipping.other_account()
    theirs = await shipping.create(headers=other)
    answer = (
        await call(
            shipping,
            "erase",
            {"subject": {"account_id": str(shipping.account_id)}, "request_id": "e-4"},
        )
    ).json()
    assert answer["erased"]["shipments"] == 1
    assert answer["erased"]["webhook_endpoints"] == 1
    async with shipping.session() as session:
        endpoint = await session.scalar(select(WebhookEndpoint))
        names = (
            await session.scalars(
                select(Shipment.recipient_name).where(Shipment.account_id == other_account)
            )
        ).all()
    assert endpoint is not None
    assert endpoint.url == "[erased]"
    assert endpoint.is_active is False
    assert endpoint.secret_ciphertext is None
    assert endpoint.previous_secret_ciphertext is None
    assert names == ["Jan Jansen"]
    assert theirs["id"]


async def test_restriction_flags_existing_and_future_shipments(shipping: Shipping) -> None:
    jan, piet = await two_recipients(shipping)
    answer = (
        await call(
            shipping,
            "restrict",
            {"subject": JAN, "request_id": "r-1", "restricted": True, "basis": "objection"},
        )
    ).json()
    assert answer == {
        "service": "shipping",
        "restricted": {"shipments": 1, "subject_restrictions": 1},
    }
    assert (await shipping.stored(jan["id"])).is_restricted is True
    assert (await shipping.stored(piet["id"])).is_restricted is False
    later = await shipping.create(recipient_changes={"email": "jan.jansen@example.nl"})
    assert (await shipping.stored(later["id"])).is_restricted is True
    bulk = await shipping.client.post(
        "/v1/shipments/bulk", json={"shipments": [_body(1)]}, headers=shipping.headers
    )
    bulk_id = bulk.json()["results"][0]["shipment"]["id"]
    assert (await shipping.stored(bulk_id)).is_restricted is True


async def test_restriction_rewrites_webhook_bodies_queued_before_it(
    shipping: Shipping, receiver: Receiver
) -> None:
    hook = await shipping.client.post(
        "/v1/webhook-endpoints",
        json={"url": receiver.url, "events": ["shipment.handed_to_carrier"]},
        headers=shipping.headers,
    )
    assert hook.status_code == 201
    jan, piet = await two_recipients(shipping)
    for shipment in (jan, piet):
        code = shipment["tracking_code"]
        await push_event(shipping.client, "postnl", carrier_event(code, "handed_to_carrier", code))
    receiver.answer(503, 503)  # both first attempts fail: the retries come after the restriction
    dispatcher = shipping.app.state.webhook_dispatcher
    dispatcher.batch_size = 1  # one at a time: the test's database is one connection
    for _ in range(2):
        assert await dispatcher.run_once(shipping.clock.now()) == 1
    answer = (
        await call(
            shipping,
            "restrict",
            {"subject": JAN, "request_id": "r-6", "restricted": True, "basis": "restriction"},
        )
    ).json()
    assert answer["restricted"]["webhook_deliveries"] == 1

    shipping.clock.advance(timedelta(minutes=5))
    for _ in range(2):
        assert await dispatcher.run_once(shipping.clock.now()) == 1
    retried = {
        body["data"]["shipment"]["id"]: body["data"]
        for body in (orjson.loads(r.body) for r in (await receiver.wait_for(4))[2:])
    }
    restricted = retried[jan["id"]]
    assert restricted["shipment"]["reference"] is None
    assert restricted["shipment"]["tracking_code"] == jan["tracking_code"]
    assert restricted["event"]["city"] is None
    assert restricted["event"]["description"] != "Scanned"
    assert restricted["event"]["status"] == "handed_to_carrier"
    untouched = retried[piet["id"]]
    assert untouched["shipment"]["reference"] == piet["reference"]
    assert (untouched["event"]["city"], untouched["event"]["description"]) == (
        "Nieuwegein",
        "Scanned",
    )
    async with shipping.session() as session:
        stored = await session.scalar(
            select(WebhookDelivery.payload).where(
                WebhookDelivery.shipment_id == uuid.UUID(jan["id"])
            )
        )
    assert stored is not None
    assert stored["data"] == restricted


async def test_lifting_only_undoes_the_same_basis(shipping: Shipping) -> None:
    jan, _ = await two_recipients(shipping)
    await call(
        shipping,
        "restrict",
        {"subject": JAN, "request_id": "r-2", "restricted": True, "basis": "objection"},
    )
    await call(
        shipping,
        "restrict",
        {"subject": JAN, "request_id": "r-3", "restricted": False, "basis": "restriction"},
    )
    assert (await shipping.stored(jan["id"])).is_restricted is True
    await call(
        shipping,
        "restrict",
        {"subject": JAN, "request_id": "r-4", "restricted": False, "basis": "objection"},
    )
    assert (await shipping.stored(jan["id"])).is_restricted is False
    async with shipping.session() as session:
        assert await session.scalar(select(func.count()).select_from(SubjectRestriction)) == 0


async def test_restrict_repeated_with_the_same_request_id_changes_nothing_more(
    shipping: Shipping,
) -> None:
    await two_recipients(shipping)
    body = {"subject": JAN, "request_id": "r-5", "restricted": True, "basis": "restriction"}
    first = (await call(shipping, "restrict", body)).json()
    second = (await call(shipping, "restrict", body)).json()
    assert first == second


async def test_rectify_corrects_the_recipient_and_the_blind_index(shipping: Shipping) -> None:
    jan, _ = await two_recipients(shipping)
    answer = (
        await call(
            shipping,
            "rectify",
            {
                "subject": JAN,
                "request_id": "c-1",
                "changes": {"street": "Dorpsstraat", "postcode": "1234ab", "email": "jan@new.nl"},
            },
        )
    ).json()
    assert answer == {
        "service": "shipping",
        "rectified": {"shipments": 1},
        "fields": ["email", "postcode", "street"],
    }
    stored = await shipping.stored(jan["id"])
    assert stored.recipient_street == "Dorpsstraat"
    assert stored.recipient_postcode == "1234 AB"
    assert stored.postcode_area == "1234"
    found = lines(
        await call(shipping, "export", {"subject": {"email": "jan@new.nl"}, "request_id": "c-x"})
    )
    assert [r["record"]["id"] for r in found if r["table"] == "shipments"] == [jan["id"]]


async def test_rectify_refuses_bad_values_naming_the_field(shipping: Shipping) -> None:
    await two_recipients(shipping)
    for changes, field in (
        ({"postcode": "ABCD"}, "changes.postcode"),
        ({"phone": "12"}, "changes.phone"),
        ({"favourite_colour": "blue"}, "changes.favourite_colour"),
    ):
        response = await shipping.client.post(
            "/internal/v1/subjects/rectify",
            json={"subject": JAN, "request_id": f"c-{field}", "changes": changes},
            headers=shipping.service(),
        )
        assert response.status_code == 422, changes
        assert response.json()["errors"][0]["field"] == field
