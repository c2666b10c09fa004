"""OWASP API7 (server side request forgery): the one URL a client gives us to call — a webhook
endpoint — can never point into our own network: loopback, private, shared, link-local and
metadata addresses (literal, encoded, or behind a DNS name), other schemes than http(s), and
credentials are refused when saved and when changed; DNS is checked again at every delivery;
redirects are never followed."""

from __future__ import annotations

import ipaddress
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from sqlalchemy import select

from services.shipping_api.models import WebhookDelivery
from services.shipping_api.settings import ShippingSettings
from services.shipping_api.webhooks.service import WebhookPolicy
from tests.security.conftest import ShippingWorld, shipping_settings_for, start_shipping_world
from tests.support.db import rolled_back
from tests.support.shipping_receiver import webhook_receiver
from tests.support.tokens import TokenIssuer

UNSAFE_URLS = [
    # loopback, however written
    "http://127.0.0.1/hook",
    "http://127.1/hook",
    "http://2130706433/hook",
    "http://0x7f000001/hook",
    "http://localhost:8001/internal/v1/subjects/export",
    "http://[::1]/hook",
    "http://[::ffff:127.0.0.1]/hook",
    "http://0.0.0.0:8002/",
    # private and shared networks
    "http://10.0.0.7/hook",
    "http://172.16.5.4/hook",
    "http://192.168.1.20/hook",
    "http://100.64.0.1/hook",
    "http://[fd00::1]/hook",
    # link-local and cloud metadata
    "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
    "http://[fe80::1]/hook",
    "http://[fd00:ec2::254]/latest/meta-data/",
    "http://metadata.google.internal/computeMetadata/v1/",
    "http://metadata/computeMetadata/v1/",
    # other schemes, credentials in the URL
    "file:///etc/passwd",
    "ftp://shop.example.nl/hook",
    "gopher://127.0.0.1:6379/_FLUSHALL",
    "dict://127.0.0.1:6379/info",
    "https://user:secret@93.184.215.14/hook",
]
PUBLIC = "https://93.184.215.14/parcelpro"


class FixedResolver:
    """A DNS answer chosen by the test (a public name that points inward: DNS rebinding)."""

    def __init__(self, answer: str) -> None:
        self.answer = answer

    async def resolve(self, host: str, port: int) -> list[Any]:
        return [ipaddress.ip_address(self.answer)]


@pytest.fixture
async def world(
    shipping_settings: ShippingSettings, issuer: TokenIssuer
) -> AsyncIterator[ShippingWorld]:
    settings = shipping_settings_for(shipping_settings, webhook_allow_loopback=False)
    async with (
        rolled_back(settings) as database,
        start_shipping_world(settings, issuer, database) as running,
    ):
        yield running


def use_resolver(world: ShippingWorld, resolver: Any, *, allow_loopback: bool = False) -> None:
    state = world.running.app.state
    state.webhook_policy = WebhookPolicy(
        resolver=resolver, allow_loopback=allow_loopback, secrets=state.webhook_policy.secrets
    )
    state.webhook_dispatcher.policy = state.webhook_policy


async def save(world: ShippingWorld, key: dict[str, str], url: str) -> Any:
    return await world.running.client.post(
        "/v1/webhook-endpoints",
        json={"url": url, "events": ["shipment.created"]},
        headers=key,
    )


async def deliveries(world: ShippingWorld) -> list[WebhookDelivery]:
    async with world.database.session() as session:
        return list((await session.scalars(select(WebhookDelivery))).all())


@pytest.mark.parametrize("url", UNSAFE_URLS)
async def test_an_inward_or_non_http_url_is_refused_when_saved_and_when_changed(
    world: ShippingWorld, url: str
) -> None:
    _, key = world.account()
    created = await save(world, key, url)
    existing = await save(world, key, PUBLIC)
    changed = await world.running.client.patch(
        f"/v1/webhook-endpoints/{existing.json()['id']}", json={"url": url}, headers=key
    )

    for response in (created, changed):
        assert response.status_code == 422, url
        assert [e["field"] for e in response.json()["errors"]] == ["url"]
    kept = await world.running.client.get(
        f"/v1/webhook-endpoints/{existing.json()['id']}", headers=key
    )
    assert kept.json()["url"] == PUBLIC


@pytest.mark.parametrize("answer", ["127.0.0.1", "10.1.2.3", "169.254.169.254", "::1"])
async def test_a_name_that_resolves_inward_is_refused(world: ShippingWorld, answer: str) -> None:
    use_resolver(world, FixedResolver(answer))
    _, key = world.account()
    response = await save(world, key, "https://hooks.webshop.example/parcelpro")
    assert response.status_code == 422
    assert "non-public address" in response.json()["errors"][0]["message"]


async def test_dns_rebinding_after_saving_is_caught_at_delivery(world: ShippingWorld) -> None:
    resolver = FixedResolver("93.184.215.14")
    use_resolver(world, resolver)
    _, key = world.account()
    assert (await save(world, key, "https://hooks.webshop.example/parcelpro")).status_code == 201
    resolver.answer = "169.254.169.254"
    await world.create_shipment(key)

    await world.running.app.state.webhook_dispatcher.run_once(world.clock.now())

    [delivery] = await deliveries(world)
    assert delivery.last_status_code is None
    assert "non-public address" in (delivery.last_error or "")


@contextmanager
def redirecting_to(location: str) -> Iterator[str]:
    """A receiver that answers every delivery with a redirect to ``location``."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            self.send_response(307)
            self.send_header("Location", location)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


async def test_a_redirect_is_never_followed(world: ShippingWorld) -> None:
    """Loopback is allowed here (the development setting) only so that both the redirecting
    receiver and the "internal" target can be real servers on this machine."""
    use_resolver(world, world.running.app.state.webhook_policy.resolver, allow_loopback=True)
    _, key = world.account()
    with webhook_receiver() as internal, redirecting_to(internal.url) as redirector:
        assert (await save(world, key, redirector)).status_code == 201
        await world.create_shipment(key)
        await world.running.app.state.webhook_dispatcher.run_once(world.clock.now())

        [delivery] = await deliveries(world)
        assert delivery.last_status_code == 307
        assert delivery.last_error == "redirects are not followed"
        assert internal.received == []
