"""Webhook endpoints: CRUD, SSRF refusals, signed deliveries from the outbox, retries, log."""

from __future__ import annotations

import dataclasses
import ipaddress
import uuid
from datetime import datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.auth import Scope
from services.shipping_api.models import SubjectRestriction, WebhookDelivery, WebhookEndpoint
from services.shipping_api.retention.service import run_retention
from services.shipping_api.settings import ShippingSettings
from services.shipping_api.shipments import fastpath
from services.shipping_api.vocabulary import STATUS_DESCRIPTIONS, ShipmentStatus, WebhookEvent
from services.shipping_api.webhooks.outbox import ShipmentWebhookEvent, enqueue_webhooks
from services.shipping_api.webhooks.signing import signature, verify
from services.shipping_api.webhooks.ssrf import is_allowed_address
from tests.shipping.conftest import (
    Shipping,
    delete_account_rows,
    record_direct_statements,
    settings_for,
    start_shipping,
)
from tests.support.db import on_postgres
from tests.support.shipping_carriers import carrier_event, push_event
from tests.support.shipping_receiver import Received, Receiver
from tests.support.tokens import TokenIssuer, bearer


async def register(shipping: Shipping, url: str, events: list[str] | None = None) -> dict[str, Any]:
    response = await shipping.client.post(
        "/v1/webhook-endpoints",
        json={"url": url, "events": events or ["shipment.created", "shipment.delivered"]},
        headers=shipping.headers,
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def pause(shipping: Shipping, endpoint_id: str) -> httpx.Response:
    """The account switches the endpoint off (``is_active: false``)."""
    return await shipping.client.patch(
        f"/v1/webhook-endpoints/{endpoint_id}", json={"is_active": False}, headers=shipping.headers
    )


async def deliver(shipping: Shipping) -> int:
    tried: int = await shipping.app.state.webhook_dispatcher.run_once(shipping.clock.now())
    return tried


async def deliveries(shipping: Shipping) -> list[WebhookDelivery]:
    async with shipping.session() as session:
        return list((await session.scalars(select(WebhookDelivery))).all())


async def test_secret_is_shown_once_and_stored_encrypted(shipping: Shipping) -> None:
    created = await register(shipping, "https://shop.example.nl/hook")
    secret = created["secret"]
    assert secret.startswith("whsec_")
    assert created["secret_hint"] == secret[:10] + "…"
    fetched = await shipping.client.get(
        f"/v1/webhook-endpoints/{created['id']}", headers=shipping.headers
    )
    assert fetched.status_code == 200
    assert "secret" not in fetched.json()
    async with shipping.session() as session:
        stored = await session.scalar(select(WebhookEndpoint))
    assert stored is not None
    assert secret not in (stored.secret_ciphertext or "")


async def test_endpoint_crud_and_other_accounts_get_404(shipping: Shipping) -> None:
    created = await register(shipping, "https://shop.example.nl/hook")
    path = f"/v1/webhook-endpoints/{created['id']}"
    changed = await shipping.client.patch(
        path,
        json={"events": ["shipment.delivered", "shipment.delivered"], "is_active": False},
        headers=shipping.headers,
    )
    assert changed.status_code == 200
    assert changed.json()["events"] == ["shipment.delivered"]
    assert changed.json()["is_active"] is False
    listed = await shipping.client.get("/v1/webhook-endpoints", headers=shipping.headers)
    assert [e["id"] for e in listed.json()["data"]] == [created["id"]]
    _, other = shipping.other_account()
    for method in ("GET", "PATCH", "DELETE"):
        response = await shipping.client.request(
            method, path, headers=other, json={} if method == "PATCH" else None
        )
        assert response.status_code == 404
    assert (await shipping.client.get(f"{path}/deliveries", headers=other)).status_code == 404
    deleted = await shipping.client.delete(path, headers=shipping.headers)
    assert deleted.status_code == 204
    assert (await shipping.client.get(path, headers=shipping.headers)).status_code == 404


async def test_managing_webhooks_needs_the_scope(shipping: Shipping) -> None:
    key = shipping.issuer.api_keys.issue(shipping.account_id, [Scope.SHIPMENTS_WRITE.value])
    response = await shipping.client.get("/v1/webhook-endpoints", headers=bearer(key))
    assert response.status_code == 403


@pytest.mark.parametrize(
    "url",
    [
        "http://10.0.0.7/hook",
        "http://192.168.1.20/hook",
        "http://172.16.5.4/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[fd00:ec2::254]/",
        "http://[::ffff:10.0.0.1]/",
        "http://100.64.0.1/",
        "http://0.0.0.0/",
        "ftp://shop.example.nl/hook",
        "file:///etc/passwd",
        "gopher://shop.example.nl/",
        "https://user:secret@shop.example.nl/hook",
        "http://metadata.google.internal/",
    ],
)
async def test_unsafe_urls_are_refused(shipping: Shipping, url: str) -> None:
    response = await shipping.client.post(
        "/v1/webhook-endpoints",
        json={"url": url, "events": ["shipment.created"]},
        headers=shipping.headers,
    )
    assert response.status_code == 422, url
    assert response.json()["errors"][0]["field"] == "url"


async def test_loopback_is_refused_unless_the_development_setting_allows_it(
    shipping_settings,
    issuer,  # type: ignore[no-untyped-def]
) -> None:
    settings = settings_for(shipping_settings, webhook_allow_loopback=False)
    async with start_shipping(settings, issuer) as shipping:
        for url in ("http://127.0.0.1:9999/hook", "http://localhost/hook", "http://[::1]/"):
            response = await shipping.client.post(
                "/v1/webhook-endpoints",
                json={"url": url, "events": ["shipment.created"]},
                headers=shipping.headers,
            )
            assert response.status_code == 422, url


def test_address_policy() -> None:
    def allowed(value: str, loopback: bool = False) -> bool:
        return is_allowed_address(ipaddress.ip_address(value), allow_loopback=loopback)

    assert allowed("93.184.216.34")
    assert allowed("2606:2800:220:1:248:1893:25c8:1946")
    assert not allowed("127.0.0.1")
    assert allowed("127.0.0.1", loopback=True)
    assert not allowed("10.1.2.3", loopback=True)
    assert not allowed("169.254.169.254", loopback=True)
    assert not allowed("224.0.0.1")
    assert not allowed("::ffff:192.168.0.1")


async def test_deliveries_arrive_signed_at_a_real_receiver(
    shipping: Shipping, receiver: Receiver
) -> None:
    endpoint = await register(shipping, receiver.url)
    shipment = await shipping.create()
    assert await deliver(shipping) == 1
    [received] = await receiver.wait_for(1)
    assert received.path == "/hooks/parcelpro"
    assert received.headers["parcelpro-event"] == "shipment.created"
    assert verify(endpoint["secret"], received.headers["parcelpro-signature"], received.body)
    assert not verify("whsec_wrong", received.headers["parcelpro-signature"], received.body)
    timestamp = int(received.headers["parcelpro-signature"].split(",")[0][2:])
    assert timestamp == int(shipping.clock.now().timestamp())
    payload = orjson.loads(received.body)
    assert payload["type"] == "shipment.created"
    assert payload["data"]["shipment"]["tracking_code"] == shipment["tracking_code"]
    assert "Jan Jansen" not in received.body.decode()
    log = await shipping.client.get(
        f"/v1/webhook-endpoints/{endpoint['id']}/deliveries", headers=shipping.headers
    )
    [entry] = log.json()["data"]
    assert entry["state"] == "delivered"
    assert entry["attempts"] == 1
    assert entry["last_status_code"] == 200


async def test_only_subscribed_events_are_sent(shipping: Shipping, receiver: Receiver) -> None:
    await register(shipping, receiver.url, events=["shipment.delivered"])
    shipment = await shipping.create()
    assert await deliver(shipping) == 0
    code = shipment["tracking_code"]
    for index, status in enumerate(["handed_to_carrier", "out_for_delivery", "delivered"]):
        await push_event(shipping.client, "postnl", carrier_event(code, status, f"ev{index}"))
    assert await deliver(shipping) == 1
    [received] = await receiver.wait_for(1)
    assert orjson.loads(received.body)["data"]["event"]["status"] == "delivered"


async def test_failed_delivery_is_retried_with_backoff(
    shipping: Shipping, receiver: Receiver
) -> None:
    await register(shipping, receiver.url)
    receiver.answer(500)
    await shipping.create()
    assert await deliver(shipping) == 1
    [delivery] = await deliveries(shipping)
    assert delivery.state == "pending"
    assert delivery.last_status_code == 500
    assert delivery.next_attempt_at is not None
    assert delivery.next_attempt_at > shipping.clock.now()
    assert await deliver(shipping) == 0  # not due yet
    shipping.clock.advance(timedelta(minutes=1))
    assert await deliver(shipping) == 1
    received = await receiver.wait_for(2)
    assert received[0].headers["parcelpro-delivery"] == received[1].headers["parcelpro-delivery"]
    [delivery] = await deliveries(shipping)
    assert delivery.state == "delivered"
    assert delivery.attempts == 2


async def test_gives_up_after_24_hours(shipping: Shipping, receiver: Receiver) -> None:
    await register(shipping, receiver.url)
    receiver.answer(*([503] * 100))
    await shipping.create()
    started = shipping.clock.now()
    attempts = 0
    while True:
        tried = await deliver(shipping)
        attempts += tried
        [delivery] = await deliveries(shipping)
        if delivery.state != "pending":
            break
        shipping.clock.advance(timedelta(hours=1))
        assert shipping.clock.now() - started < timedelta(hours=30)
    assert delivery.state == "failed"
    assert delivery.last_attempt_at is not None
    assert delivery.last_attempt_at - started <= timedelta(hours=24)
    assert 8 <= attempts <= 30


async def test_redirects_are_not_followed(shipping: Shipping, receiver: Receiver) -> None:
    await register(shipping, receiver.url)
    receiver.answer(302)
    await shipping.create()
    await deliver(shipping)
    [delivery] = await deliveries(shipping)
    assert delivery.last_status_code == 302
    assert delivery.last_error == "redirects are not followed"
    assert len(receiver.received) == 1


class SwitchingResolver:
    """A public answer when the endpoint is saved, a private one at delivery (DNS rebinding)."""

    def __init__(self) -> None:
        self.answer = "93.184.216.34"

    async def resolve(self, host: str, port: int) -> list[Any]:
        return [ipaddress.ip_address(self.answer)]


async def test_dns_is_checked_again_at_delivery_time(shipping: Shipping) -> None:
    resolver = SwitchingResolver()
    shipping.app.state.webhook_policy = type(shipping.app.state.webhook_policy)(
        resolver=resolver,  # type: ignore[arg-type]
        allow_loopback=False,
        secrets=shipping.app.state.webhook_policy.secrets,
    )
    shipping.app.state.webhook_dispatcher.policy = shipping.app.state.webhook_policy
    await register(shipping, "http://hooks.shop.example/parcelpro")
    resolver.answer = "10.20.30.40"
    await shipping.create()
    await deliver(shipping)
    [delivery] = await deliveries(shipping)
    assert delivery.state == "pending"
    assert delivery.last_status_code is None
    assert delivery.last_error is not None
    assert "non-public address" in delivery.last_error


async def test_paused_endpoint_gets_nothing(shipping: Shipping, receiver: Receiver) -> None:
    endpoint = await register(shipping, receiver.url)
    await pause(shipping, endpoint["id"])
    await shipping.create()
    assert await deliver(shipping) == 0
    assert receiver.received == []


async def test_the_background_worker_delivers_without_help(
    shipping_settings,
    issuer,
    receiver: Receiver,  # type: ignore[no-untyped-def]
) -> None:
    settings = settings_for(shipping_settings, outbox_worker_enabled=True, outbox_poll_seconds=0.05)
    async with start_shipping(settings, issuer, committed=True) as shipping:
        try:
            await register(shipping, receiver.url)
            shipment = await shipping.create()
            [received] = await receiver.wait_for(1)
            assert shipment["tracking_code"].encode() in received.body
        finally:
            await delete_account_rows(shipping.database, shipping.account_id)


@pytest.mark.skipif(not on_postgres(), reason="row locks are PostgreSQL's")
async def test_creates_for_one_account_do_not_wait_for_each_other(
    shipping_settings,
    issuer,  # type: ignore[no-untyped-def]
) -> None:
    """Queueing a delivery only keeps the endpoint from being deleted meanwhile (FOR KEY
    SHARE); two shipments of the same account queued at once must not queue behind each
    other on the endpoint's row."""
    async with start_shipping(settings_for(shipping_settings), issuer, committed=True) as shipping:
        try:
            await register(shipping, "http://127.0.0.1:9/hooks")
            first = await shipping.create()
            outboxes = shipping.app.state.outboxes

            async def enqueue(session: AsyncSession) -> int:
                return await enqueue_webhooks(
                    session,
                    account_id=shipping.account_id,
                    events=[
                        ShipmentWebhookEvent(
                            WebhookEvent.SHIPMENT_CREATED, uuid.UUID(first["id"]), {}
                        )
                    ],
                    now=shipping.clock.now(),
                    retry_window=outboxes.webhook_retry,
                )

            async with shipping.session() as holding, shipping.session() as other:
                assert await enqueue(holding) == 1  # its transaction stays open
                await other.execute(text("SET LOCAL lock_timeout = '2s'"))
                assert await enqueue(other) == 1
                await other.commit()
                await holding.rollback()
        finally:
            await delete_account_rows(shipping.database, shipping.account_id)


async def rotate(shipping: Shipping, endpoint_id: str, **body: Any) -> httpx.Response:
    return await shipping.client.post(
        f"/v1/webhook-endpoints/{endpoint_id}/rotate-secret",
        json=body or None,
        headers=shipping.headers,
    )


def as_json(moment: datetime) -> str:
    """A time as the API writes it (RFC 3339, UTC as ``Z``)."""
    return moment.isoformat().replace("+00:00", "Z")


def signatures_of(received: Received) -> list[str]:
    header = received.headers["parcelpro-signature"]
    return [item for item in header.split(",") if item.startswith("v1=")]


async def test_a_rotated_secret_signs_beside_the_old_one_until_the_overlap_ends(
    shipping: Shipping, receiver: Receiver
) -> None:
    endpoint = await register(shipping, receiver.url)
    old = endpoint["secret"]
    response = await rotate(shipping, endpoint["id"], previous_secret_valid_hours=2)
    assert response.status_code == 200, response.text
    rotated = response.json()
    new = rotated["secret"]
    assert new.startswith("whsec_")
    assert new != old
    assert rotated["secret_hint"] == new[:10] + "…"
    until = shipping.clock.now() + timedelta(hours=2)
    assert rotated["previous_secret_expires_at"] == as_json(until)
    fetched = await shipping.client.get(
        f"/v1/webhook-endpoints/{endpoint['id']}", headers=shipping.headers
    )
    assert "secret" not in fetched.json()
    assert fetched.json()["previous_secret_expires_at"] == rotated["previous_secret_expires_at"]

    # During the overlap a receiver holding either secret accepts the delivery.
    await shipping.create()
    assert await deliver(shipping) == 1
    [during] = await receiver.wait_for(1)
    assert len(signatures_of(during)) == 2
    for secret in (old, new):
        assert verify(secret, during.headers["parcelpro-signature"], during.body)

    shipping.clock.advance(timedelta(hours=2))
    await shipping.create()
    assert await deliver(shipping) == 1
    [_, after] = await receiver.wait_for(2)
    assert len(signatures_of(after)) == 1
    assert verify(new, after.headers["parcelpro-signature"], after.body)
    assert not verify(old, after.headers["parcelpro-signature"], after.body)
    fetched = await shipping.client.get(
        f"/v1/webhook-endpoints/{endpoint['id']}", headers=shipping.headers
    )
    assert fetched.json()["previous_secret_expires_at"] is None


async def test_a_leaked_secret_is_retired_at_once_and_the_default_overlap_is_a_day(
    shipping: Shipping, receiver: Receiver
) -> None:
    endpoint = await register(shipping, receiver.url)
    first = (await rotate(shipping, endpoint["id"])).json()
    until = shipping.clock.now() + timedelta(hours=24)
    assert first["previous_secret_expires_at"] == as_json(until)

    response = await rotate(shipping, endpoint["id"], previous_secret_valid_hours=0)
    assert response.status_code == 200
    final = response.json()
    assert final["previous_secret_expires_at"] is None
    await shipping.create()
    assert await deliver(shipping) == 1
    [received] = await receiver.wait_for(1)
    assert len(signatures_of(received)) == 1
    assert verify(final["secret"], received.headers["parcelpro-signature"], received.body)
    for earlier in (endpoint["secret"], first["secret"]):
        assert not verify(earlier, received.headers["parcelpro-signature"], received.body)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"previous_secret_valid_hours": 73}, "previous_secret_valid_hours"),
        ({"previous_secret_valid_hours": -1}, "previous_secret_valid_hours"),
        ({"previous_secret_valid_hours": "24"}, "previous_secret_valid_hours"),
        ({"previous_secret_valid_hours": True}, "previous_secret_valid_hours"),
        ({"keep_old": True}, "keep_old"),
    ],
)
async def test_rotation_refuses_a_bad_overlap_by_name(
    shipping: Shipping, body: dict[str, Any], field: str
) -> None:
    endpoint = await register(shipping, "https://shop.example.nl/hook")
    response = await rotate(shipping, endpoint["id"], **body)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert [error["field"] for error in response.json()["errors"]] == [field]
    stored = await shipping.client.get(
        f"/v1/webhook-endpoints/{endpoint['id']}", headers=shipping.headers
    )
    assert stored.json()["secret_hint"] == endpoint["secret_hint"]


async def test_only_the_owner_with_the_scope_rotates_a_secret(shipping: Shipping) -> None:
    endpoint = await register(shipping, "https://shop.example.nl/hook")
    path = f"/v1/webhook-endpoints/{endpoint['id']}/rotate-secret"
    _, other = shipping.other_account()
    assert (await shipping.client.post(path, headers=other)).status_code == 404
    key = shipping.issuer.api_keys.issue(shipping.account_id, [Scope.SHIPMENTS_WRITE.value])
    assert (await shipping.client.post(path, headers=bearer(key))).status_code == 403
    missing = f"/v1/webhook-endpoints/{uuid.uuid4()}/rotate-secret"
    assert (await shipping.client.post(missing, headers=shipping.headers)).status_code == 404
    stored = await shipping.client.get(
        f"/v1/webhook-endpoints/{endpoint['id']}", headers=shipping.headers
    )
    assert stored.json()["secret_hint"] == endpoint["secret_hint"]


async def test_the_retention_job_drops_secrets_that_no_longer_sign(shipping: Shipping) -> None:
    endpoint = await register(shipping, "https://shop.example.nl/hook")
    await rotate(shipping, endpoint["id"], previous_secret_valid_hours=1)
    settings = shipping.app.state.settings
    report = await run_retention(shipping.database.sessionmaker, settings, now=shipping.clock.now())
    assert report.previous_webhook_secrets == 0
    later = shipping.clock.now() + timedelta(hours=1)
    report = await run_retention(shipping.database.sessionmaker, settings, now=later)
    assert report.previous_webhook_secrets == 1
    async with shipping.session() as session:
        stored = await session.get(WebhookEndpoint, uuid.UUID(endpoint["id"]))
    assert stored is not None
    assert stored.previous_secret_ciphertext is None
    assert stored.previous_secret_expires_at is None
    assert stored.secret_ciphertext is not None


def test_a_receiver_accepts_a_delivery_when_any_signature_matches() -> None:
    body = b'{"type":"shipment.created"}'
    header = signature("whsec_new", 1_700_000_000, body, "whsec_old")
    assert header.startswith("t=1700000000,v1=")
    assert verify("whsec_new", header, body)
    assert verify("whsec_old", header, body)
    assert not verify("whsec_other", header, body)
    assert not verify("whsec_new", header, body + b" ")
    assert not verify("whsec_new", header.replace("t=1700000000", "t=1700000001"), body)
    assert not verify("whsec_new", header.split(",", 1)[1], body)
    assert not verify("whsec_new", "t=1700000000,v1=é", body)


async def redeliver(shipping: Shipping, endpoint_id: str, delivery_id: uuid.UUID) -> httpx.Response:
    return await shipping.client.post(
        f"/v1/webhook-endpoints/{endpoint_id}/deliveries/{delivery_id}/redeliver",
        headers=shipping.headers,
    )


async def test_a_failed_delivery_is_sent_again_on_request(
    shipping: Shipping, receiver: Receiver
) -> None:
    endpoint = await register(shipping, receiver.url)
    receiver.answer(*([503] * 100))
    await shipping.create()
    while (await deliveries(shipping))[0].state == "pending":
        await deliver(shipping)
        shipping.clock.advance(timedelta(hours=2))
    [failed] = await deliveries(shipping)
    assert failed.state == "failed"
    tries = len(receiver.received)

    # The receiver is back; the partner asks for the missed event.
    receiver.answers.clear()
    response = await redeliver(shipping, endpoint["id"], failed.id)
    assert response.status_code == 202, response.text
    queued = response.json()
    assert queued["id"] == str(failed.id)
    assert queued["state"] == "pending"
    assert queued["next_attempt_at"] == as_json(shipping.clock.now())
    assert await deliver(shipping) == 1
    received = await receiver.wait_for(tries + 1)
    again = received[-1]
    assert again.headers["parcelpro-delivery"] == str(failed.id)
    assert again.body == received[0].body
    assert verify(endpoint["secret"], again.headers["parcelpro-signature"], again.body)
    [delivery] = await deliveries(shipping)
    assert delivery.state == "delivered"
    assert delivery.attempts == failed.attempts + 1

    # Delivered ones may be sent again too (receivers de-duplicate on Parcelpro-Delivery).
    assert (await redeliver(shipping, endpoint["id"], failed.id)).status_code == 202
    # ... but not twice at once.
    twice = await redeliver(shipping, endpoint["id"], failed.id)
    assert twice.status_code == 409
    assert twice.json()["type"].endswith("/not-redeliverable")
    assert "still queued" in twice.json()["detail"]


async def test_redelivery_is_refused_for_a_paused_endpoint_or_an_erased_payload(
    shipping: Shipping, receiver: Receiver
) -> None:
    endpoint = await register(shipping, receiver.url)
    await shipping.create()
    await deliver(shipping)
    [delivery] = await deliveries(shipping)
    paused = await pause(shipping, endpoint["id"])
    assert paused.status_code == 200
    response = await redeliver(shipping, endpoint["id"], delivery.id)
    assert response.status_code == 409
    assert "paused" in response.json()["detail"]

    await shipping.client.patch(
        f"/v1/webhook-endpoints/{endpoint['id']}",
        json={"is_active": True},
        headers=shipping.headers,
    )
    async with shipping.session() as session:
        await session.execute(
            update(WebhookDelivery).where(WebhookDelivery.id == delivery.id).values(payload=None)
        )
        await session.commit()
    response = await redeliver(shipping, endpoint["id"], delivery.id)
    assert response.status_code == 409
    assert "erased" in response.json()["detail"]
    [unchanged] = await deliveries(shipping)
    assert unchanged.state == "delivered"


async def test_a_delivery_is_only_found_in_its_own_endpoints_log(
    shipping: Shipping, receiver: Receiver
) -> None:
    first = await register(shipping, receiver.url)
    second = await register(shipping, receiver.url)
    await shipping.create()
    of_first = next(d for d in await deliveries(shipping) if str(d.endpoint_id) == first["id"])
    response = await redeliver(shipping, second["id"], of_first.id)
    assert response.status_code == 404
    assert response.json()["type"].endswith("/webhook-delivery-not-found")
    assert (await redeliver(shipping, first["id"], uuid.uuid4())).status_code == 404


async def test_a_changed_url_is_resolved_before_the_database_is_touched(
    shipping_settings: ShippingSettings, issuer: TokenIssuer
) -> None:
    """DNS can take seconds; a transaction open meanwhile would hold a connection (and, on
    SQLite, every other writer) for as long."""
    async with start_shipping(settings_for(shipping_settings), issuer, committed=True) as shop:
        try:
            endpoint = await register(shop, "https://shop.example.nl/hook")
            pool = shop.database.bind.pool  # type: ignore[union-attr]
            in_use: list[int] = []

            class Watching:
                async def resolve(self, host: str, port: int) -> list[Any]:
                    in_use.append(pool.checkedout())
                    return [ipaddress.ip_address("93.184.215.14")]

            shop.app.state.webhook_policy = dataclasses.replace(
                shop.app.state.webhook_policy,
                resolver=Watching(),  # type: ignore[arg-type]
                allow_loopback=False,
            )
            response = await shop.client.patch(
                f"/v1/webhook-endpoints/{endpoint['id']}",
                json={"url": "https://hooks.shop.example/parcelpro"},
                headers=shop.headers,
            )
            assert response.status_code == 200, response.text
            assert response.json()["url"] == "https://hooks.shop.example/parcelpro"
            assert in_use == [0]
        finally:
            await delete_account_rows(shop.database, shop.account_id)


async def payloads_by_shipment(shipping: Shipping) -> dict[str, dict[str, dict[str, Any]]]:
    """Each shipment's queued webhook payloads by event."""
    found: dict[str, dict[str, dict[str, Any]]] = {}
    for delivery in await deliveries(shipping):
        assert delivery.payload is not None
        found.setdefault(str(delivery.shipment_id), {})[delivery.event] = delivery.payload
    return found


@pytest.mark.parametrize("keyed", [False, True], ids=["without-key", "with-key"])
async def test_a_restricted_recipients_webhooks_hold_only_what_delivery_needs(
    shipping: Shipping, monkeypatch: pytest.MonkeyPatch, keyed: bool
) -> None:
    """AVG art. 18/21 (0004): no reference, no city, no carrier text; the rest as always. A
    create without a key is stored by the one-statement create on PostgreSQL, with a key by
    the route."""
    direct = record_direct_statements(monkeypatch, fastpath.CREATE, lambda params, _: True)
    await register(shipping, "http://127.0.0.1:9/hooks")
    async with shipping.session() as session:
        session.add(
            SubjectRestriction(
                kind="email",
                value=shipping.app.state.blind_index.email("jan.jansen@example.nl"),
                basis="restriction",
                request_id="r-1",
                created_at=shipping.clock.now(),
            )
        )
        await session.commit()
    headers = {**shipping.headers, "Idempotency-Key": "restricted"} if keyed else None
    restricted = await shipping.create(headers=headers)
    headers = {**shipping.headers, "Idempotency-Key": "other"} if keyed else None
    other = await shipping.create(
        headers=headers,
        reference="ORDER-2",
        recipient_changes={"email": "piet@example.nl", "phone": "+31687654321"},
    )
    assert len(direct) == (0 if keyed or not on_postgres() else 2)
    for index, shipment in enumerate((restricted, other)):
        for status in ("handed_to_carrier", "out_for_delivery", "delivered"):
            event = carrier_event(
                shipment["tracking_code"],
                status,
                f"ev-{index}-{status}",
                occurred_at="2026-11-25T08:00:00Z",
                city="Hoogvliet Rotterdam",
                description="Bezorgd bij de buren op nummer 24",
            )
            assert (await push_event(shipping.client, "postnl", event)).status_code == 200
    payloads = await payloads_by_shipment(shipping)

    kept = payloads[restricted["id"]]
    assert set(kept) == {"shipment.created", "shipment.delivered"}
    for payload in kept.values():
        shipment = payload["data"]["shipment"]
        assert shipment["id"] == restricted["id"]
        assert shipment["tracking_code"] == restricted["tracking_code"]
        assert shipment["reference"] is None
        assert payload["data"]["event"]["city"] is None
        assert "ORDER-1001" not in orjson.dumps(payload).decode()
        assert "Hoogvliet" not in orjson.dumps(payload).decode()
    delivered = kept["shipment.delivered"]["data"]
    assert delivered["shipment"]["status"] == delivered["event"]["status"] == "delivered"
    assert delivered["event"]["description"] == STATUS_DESCRIPTIONS[ShipmentStatus.DELIVERED]
    assert delivered["event"]["occurred_at"] == "2026-11-25T08:00:00+00:00"

    sent = payloads[other["id"]]
    assert sent["shipment.created"]["data"]["shipment"]["reference"] == "ORDER-2"
    assert sent["shipment.delivered"]["data"]["shipment"]["reference"] == "ORDER-2"
    assert sent["shipment.delivered"]["data"]["event"]["city"] == "Hoogvliet Rotterdam"
    assert (
        sent["shipment.delivered"]["data"]["event"]["description"]
        == "Bezorgd bij de buren op nummer 24"
    )
