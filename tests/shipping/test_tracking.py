"""Public track & trace, tracking codes, carrier events and the sandbox."""

from __future__ import annotations

import ipaddress
import uuid

import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from services.shipping_api.carriers.signatures import SIGNATURE_HEADER
from services.shipping_api.shipments.tracking_codes import (
    ALPHABET,
    new_tracking_code,
    normalise_tracking_code,
)
from tests.shipping.conftest import Shipping, settings_for, start_shipping
from tests.support.shipping_carriers import carrier_event, push_event

PERSONAL = ("Jan Jansen", "Griede", "jan.jansen@example.nl", "+31612345678", "3191")


def assert_no_personal_data(text: str) -> None:
    for value in PERSONAL:
        assert value not in text


def test_tracking_codes_are_random_and_carry_a_check_character() -> None:
    codes = {new_tracking_code() for _ in range(2000)}
    assert len(codes) == 2000
    for code in list(codes)[:200]:
        assert normalise_tracking_code(code) == code
        assert normalise_tracking_code(code.lower()) == code
        # Every single-character typo is caught by the check character.
        position = 5
        for char in ALPHABET:
            if char != code[position]:
                typo = code[:position] + char + code[position + 1 :]
                assert normalise_tracking_code(typo) is None


async def test_public_tracking_shows_status_and_dates_only(shipping: Shipping) -> None:
    body = await shipping.create()
    response = await shipping.client.get(f"/v1/tracking/{body['tracking_code']}")
    assert response.status_code == 200
    view = response.json()
    assert view["status"] == "created"
    assert view["postcode_verified"] is False
    assert view["events"] is None
    assert view["city"] is None
    assert set(view) >= {"registered_at", "status_changed_at", "delivered_at"}
    assert_no_personal_data(response.text)
    assert "Hoogvliet" not in response.text


async def test_matching_postcode_shows_events_and_city_but_no_name_or_street(
    shipping: Shipping,
) -> None:
    body = await shipping.create()
    code = body["tracking_code"]
    await push_event(shipping.client, "postnl", carrier_event(code, "handed_to_carrier", "e1"))
    await push_event(
        shipping.client,
        "postnl",
        carrier_event(code, "in_transit", "e2", description="Handed to Jan Jansen's neighbour"),
    )
    response = await shipping.client.get(f"/v1/tracking/{code.lower()}?postcode=3191ee")
    view = response.json()
    assert view["postcode_verified"] is True
    assert view["city"] == "Hoogvliet Rotterdam"
    assert [e["status"] for e in view["events"]] == ["created", "handed_to_carrier", "in_transit"]
    assert view["events"][2]["city"] == "Nieuwegein"
    for value in ("Jan Jansen", "Griede", "jan.jansen@example.nl", "+31612345678"):
        assert value not in response.text
    wrong = await shipping.client.get(f"/v1/tracking/{code}?postcode=1234AB")
    assert wrong.json()["postcode_verified"] is False
    assert wrong.json()["events"] is None


async def test_unknown_and_mistyped_codes_are_the_same_404(shipping: Shipping) -> None:
    body = await shipping.create()
    code = body["tracking_code"]
    typo = code[:-1] + ("0" if code[-1] != "0" else "1")
    unknown = new_tracking_code()
    answers = [
        await shipping.client.get(f"/v1/tracking/{candidate}")
        for candidate in (typo, unknown, "hello")
    ]
    assert [a.status_code for a in answers] == [404, 404, 404]
    assert len({a.json()["detail"] for a in answers}) == 1


async def test_tracking_is_rate_limited_per_client(
    shipping_settings,
    issuer,  # type: ignore[no-untyped-def]
) -> None:
    settings = settings_for(shipping_settings, tracking_rate_limit="3/minute")
    async with start_shipping(settings, issuer) as shipping:
        code = (await shipping.create())["tracking_code"]
        statuses = [
            (await shipping.client.get(f"/v1/tracking/{code}")).status_code for _ in range(4)
        ]
        assert statuses == [200, 200, 200, 429]
        limited = await shipping.client.get(f"/v1/tracking/{code}")
        assert int(limited.headers["retry-after"]) >= 1


async def test_postcode_guessing_is_limited_per_code(
    shipping_settings,
    issuer,  # type: ignore[no-untyped-def]
) -> None:
    settings = settings_for(shipping_settings, tracking_postcode_rate_limit="2/hour")
    async with start_shipping(settings, issuer) as shipping:
        code = (await shipping.create())["tracking_code"]
        for guess in ("1000AA", "1000AB"):
            ok = await shipping.client.get(f"/v1/tracking/{code}?postcode={guess}")
            assert ok.status_code == 200
        blocked = await shipping.client.get(f"/v1/tracking/{code}?postcode=3191EE")
        assert blocked.status_code == 429


def from_address(ip: str) -> dict[str, str]:
    """Headers of a request from ``ip`` through the gateway (a trusted proxy in these tests)."""
    return {"X-Forwarded-For": ip}


async def test_a_recipient_refreshing_the_history_is_never_limited(
    shipping_settings,
    issuer,  # type: ignore[no-untyped-def]
) -> None:
    settings = settings_for(shipping_settings, tracking_postcode_rate_limit="10/hour")
    async with start_shipping(settings, issuer) as shipping:
        code = (await shipping.create())["tracking_code"]
        for _ in range(20):
            response = await shipping.client.get(f"/v1/tracking/{code}?postcode=3191EE")
            assert response.status_code == 200
            assert response.json()["postcode_verified"] is True


async def test_wrong_postcodes_lock_the_guesser_but_not_the_recipient(
    shipping_settings,
    issuer,  # type: ignore[no-untyped-def]
) -> None:
    settings = settings_for(
        shipping_settings,
        tracking_postcode_rate_limit="10/hour",
        trusted_proxies=[ipaddress.ip_network("203.0.113.0/24")],
    )
    recipient, guesser = from_address("198.51.100.10"), from_address("192.0.2.66")
    async with start_shipping(settings, issuer) as shipping:
        code = (await shipping.create())["tracking_code"]
        url = f"/v1/tracking/{code}"
        seen = await shipping.client.get(url, params={"postcode": "3191 EE"}, headers=recipient)
        assert seen.json()["postcode_verified"] is True
        for guess in range(10):
            wrong = await shipping.client.get(
                url, params={"postcode": f"{1000 + guess}AA"}, headers=guesser
            )
            assert wrong.status_code == 200
            assert wrong.json()["postcode_verified"] is False
        locked = await shipping.client.get(url, params={"postcode": "1010AA"}, headers=guesser)
        assert locked.status_code == 429
        assert int(locked.headers["retry-after"]) >= 1
        # The guesser learns nothing from the right postcode either ...
        right = await shipping.client.get(url, params={"postcode": "3191EE"}, headers=guesser)
        assert right.status_code == 429
        # ... while the recipient, who saw the history before, still does.
        again = await shipping.client.get(url, params={"postcode": "3191EE"}, headers=recipient)
        assert again.status_code == 200
        assert again.json()["postcode_verified"] is True
        assert again.json()["events"]
        # Without a postcode the code stays trackable for everyone.
        plain = await shipping.client.get(url, headers=guesser)
        assert plain.status_code == 200


async def test_carrier_events_move_the_status_and_replays_are_ignored(shipping: Shipping) -> None:
    body = await shipping.create()
    code = body["tracking_code"]
    first = await push_event(
        shipping.client, "postnl", carrier_event(code, "handed_to_carrier", "a")
    )
    assert first.status_code == 200, first.text
    assert first.json()["duplicate"] is False
    replay = await push_event(
        shipping.client, "postnl", carrier_event(code, "handed_to_carrier", "a")
    )
    assert replay.status_code == 200
    assert replay.json()["duplicate"] is True
    for index, status in enumerate(["in_transit", "in_transit", "out_for_delivery", "delivered"]):
        response = await push_event(
            shipping.client, "postnl", carrier_event(code, status, f"b{index}")
        )
        assert response.status_code == 200, response.text
    events = await shipping.client.get(
        f"/v1/shipments/{body['id']}/events", headers=shipping.headers
    )
    statuses = [e["status"] for e in events.json()["data"]]
    assert statuses == [
        "created",
        "handed_to_carrier",
        "in_transit",
        "in_transit",
        "out_for_delivery",
        "delivered",
    ]
    stored = await shipping.stored(body["id"])
    assert stored.status == "delivered"
    assert stored.final_at == shipping.clock.now()
    tracked = await shipping.client.get(f"/v1/tracking/{code}")
    assert tracked.json()["delivered_at"] is not None


async def test_illegal_transition_is_409(shipping: Shipping) -> None:
    body = await shipping.create()
    code = body["tracking_code"]
    response = await push_event(shipping.client, "postnl", carrier_event(code, "delivered", "x"))
    assert response.status_code == 409
    assert response.json()["type"].endswith("illegal-transition")
    assert (await shipping.stored(body["id"])).status == "created"


async def test_unsigned_or_wrongly_signed_events_are_401(shipping: Shipping) -> None:
    body = await shipping.create()
    event = carrier_event(body["tracking_code"], "handed_to_carrier", "s1")
    wrong = await push_event(shipping.client, "postnl", event, secret="guess")
    assert wrong.status_code == 401
    other_carrier = await push_event(
        shipping.client, "dhl", event, secret="dev-only-carrier-postnl"
    )
    assert other_carrier.status_code == 401
    unsigned = await shipping.client.post(
        "/v1/carriers/postnl/events",
        content=orjson.dumps(event),
        headers={"Content-Type": "application/json"},
    )
    assert unsigned.status_code == 401
    assert (await shipping.stored(body["id"])).status == "created"
    assert SIGNATURE_HEADER == "X-Carrier-Signature"


async def test_carrier_cannot_move_another_carriers_or_a_sandbox_shipment(
    shipping: Shipping,
) -> None:
    dhl = await shipping.create(carrier="dhl")
    response = await push_event(
        shipping.client, "postnl", carrier_event(dhl["tracking_code"], "handed_to_carrier", "o1")
    )
    assert response.status_code == 404
    sandbox = await shipping.create(headers=shipping.test_headers)
    response = await push_event(
        shipping.client,
        "postnl",
        carrier_event(sandbox["tracking_code"], "handed_to_carrier", "o2"),
    )
    assert response.status_code == 404


async def test_carrier_event_body_is_validated(shipping: Shipping) -> None:
    response = await push_event(
        shipping.client,
        "postnl",
        {"event_id": "v", "tracking_code": "x", "status": "cancelled", "occurred_at": "now"},
    )
    assert response.status_code == 422
    assert {e["field"] for e in response.json()["errors"]} == {"status", "occurred_at"}


async def test_simulate_walks_a_sandbox_shipment_to_delivered(shipping: Shipping) -> None:
    body = await shipping.create(headers=shipping.test_headers)
    seen = []
    for _ in range(5):
        response = await shipping.client.post(
            f"/v1/shipments/{body['id']}/simulate", headers=shipping.test_headers
        )
        assert response.status_code == 200, response.text
        seen.append(response.json()["status"])
    assert seen == [
        "label_printed",
        "handed_to_carrier",
        "in_transit",
        "out_for_delivery",
        "delivered",
    ]
    done = await shipping.client.post(
        f"/v1/shipments/{body['id']}/simulate", headers=shipping.test_headers
    )
    assert done.status_code == 409


async def test_simulate_to_a_named_status_follows_the_status_machine(shipping: Shipping) -> None:
    body = await shipping.create(headers=shipping.test_headers)
    illegal = await shipping.client.post(
        f"/v1/shipments/{body['id']}/simulate",
        json={"status": "delivered"},
        headers=shipping.test_headers,
    )
    assert illegal.status_code == 409
    ok = await shipping.client.post(
        f"/v1/shipments/{body['id']}/simulate",
        json={"status": "handed_to_carrier", "city": "Utrecht"},
        headers=shipping.test_headers,
    )
    assert ok.json()["status"] == "handed_to_carrier"


async def test_live_shipments_cannot_be_simulated(shipping: Shipping) -> None:
    body = await shipping.create()
    response = await shipping.client.post(
        f"/v1/shipments/{body['id']}/simulate", headers=shipping.headers
    )
    assert response.status_code == 409
    other = await shipping.client.post(
        f"/v1/shipments/{uuid.uuid4()}/simulate", headers=shipping.test_headers
    )
    assert other.status_code == 404


@pytest.mark.parametrize("status", ["label_printed", "cancelled"])
async def test_carriers_cannot_report_our_own_statuses(shipping: Shipping, status: str) -> None:
    body = await shipping.create()
    response = await push_event(
        shipping.client, "postnl", carrier_event(body["tracking_code"], status, "own")
    )
    assert response.status_code == 422


async def test_a_status_change_shows_at_once_although_answers_are_cached(
    shipping: Shipping,
) -> None:
    body = await shipping.create()
    code = body["tracking_code"]
    first = await shipping.client.get(f"/v1/tracking/{code}")
    assert first.json()["status"] == "created"
    # Asked again, within the cache time: the same answer without a database read.
    assert (await shipping.client.get(f"/v1/tracking/{code}")).json() == first.json()
    await push_event(shipping.client, "postnl", carrier_event(code, "handed_to_carrier", "c1"))
    after = await shipping.client.get(f"/v1/tracking/{code}")
    assert after.json()["status"] == "handed_to_carrier"


async def test_a_cached_answer_is_the_answer_the_route_gave(shipping: Shipping) -> None:
    code = (await shipping.create())["tracking_code"]
    first = await shipping.client.get(f"/v1/tracking/{code}")
    # Typed as people type it, within the cache time: answered from the cache, byte for byte.
    typed = "-".join([code[:5].lower(), code[5:10], code[10:]])
    again = await shipping.client.get(f"/v1/tracking/{typed}")
    assert again.status_code == first.status_code == 200
    assert again.content == first.content
    for header in ("content-type", "content-length"):
        assert again.headers[header] == first.headers[header]
    assert again.headers["x-request-id"] != first.headers["x-request-id"]
    # Counted under the route's template like any routed request, and written to the log.
    metrics = (await shipping.client.get("/metrics")).text
    counted = {
        (s.labels["route"], s.labels["status"]): s.value
        for family in text_string_to_metric_families(metrics)
        for s in family.samples
        if s.name == "http_requests_total" and s.labels["method"] == "GET"
    }
    assert counted == {("/v1/tracking/{tracking_code}", "200"): 2}
    # A postcode or any other query is never answered from the cache.
    other = await shipping.client.get(f"/v1/tracking/{code}", params={"postcode": "0000 XX"})
    assert other.json()["postcode_verified"] is False
