"""The request-log middleware: one JSON line per request with exactly the listed fields."""

from __future__ import annotations

import functools
import io
import ipaddress
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest
import structlog
from starlette.middleware.errors import ServerErrorMiddleware
from starlette.types import Receive, Scope, Send

from libs.common.app import ServiceApp
from libs.common.logging import (
    RequestLogMiddleware,
    RequestLogWriter,
    client_ip,
    json_processors,
)

FIELDS = {
    "ip",
    "timestamp",
    "duration_ms",
    "method",
    "host",
    "port",
    "path",
    "status",
    "request_size",
    "response_size",
    "request_id",
    "service",
    "account_id",
}
LOOPBACK = [ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128")]
ACCOUNT = uuid.UUID("01900000-0000-7000-8000-000000000001")


class Lines:
    def __init__(self) -> None:
        self.buffer = io.BytesIO()
        self.logger = structlog.wrap_logger(
            structlog.BytesLogger(self.buffer), processors=json_processors()
        )
        self.writer = RequestLogWriter(self.buffer)

    def all(self) -> list[dict[str, Any]]:
        return [orjson.loads(line) for line in self.buffer.getvalue().splitlines() if line]

    def requests(self) -> list[dict[str, Any]]:
        return [line for line in self.all() if line.get("event") == "request"]


class RecordingSink:
    def __init__(self, *, fail: bool = False) -> None:
        self.records: list[dict[str, Any]] = []
        self.fail = fail

    def submit(self, record: dict[str, Any]) -> None:
        if self.fail:
            raise RuntimeError("sink is down")
        self.records.append(record)


async def echo_app(scope: Scope, receive: Receive, send: Send) -> None:
    """Reads the whole body, optionally marks the caller as an account, streams an answer."""
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    if scope["path"] == "/boom":
        raise RuntimeError("secret internal detail")
    if scope["path"] == "/me":
        scope["state"]["account_id"] = ACCOUNT
    await send({"type": "http.response.start", "status": 201, "headers": []})
    for chunk in (b"a" * 1000, b"b" * 500, body):
        await send({"type": "http.response.body", "body": chunk, "more_body": True})
    await send({"type": "http.response.body", "body": b""})


async def ignore_body_app(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 404, "headers": []})
    await send({"type": "http.response.body", "body": b"nope"})


def client_for(
    app: Any, lines: Lines, *, peer: str = "127.0.0.1", sink: RecordingSink | None = None
) -> httpx.AsyncClient:
    middleware = RequestLogMiddleware(
        app,
        service="shipping",
        trusted_proxies=LOOPBACK,
        sink=sink,
        writer=lines.writer,
        logger=lines.logger,
    )
    transport = httpx.ASGITransport(app=middleware, client=(peer, 51234))
    return httpx.AsyncClient(transport=transport, base_url="http://parcelpro.test:8000")


async def test_one_line_with_exactly_the_listed_fields() -> None:
    lines = Lines()
    async with client_for(echo_app, lines) as client:
        response = await client.post("/v1/shipments", content=b"x" * 123)
    assert response.status_code == 201
    [entry] = lines.requests()
    assert set(entry) >= FIELDS
    assert set(entry) - FIELDS == {"event", "level"}
    assert entry["method"] == "POST"
    assert entry["host"] == "parcelpro.test"
    assert entry["port"] == 8000
    assert entry["path"] == "/v1/shipments"
    assert entry["status"] == 201
    assert entry["request_size"] == 123
    assert entry["response_size"] == 1000 + 500 + 123
    assert entry["service"] == "shipping"
    assert entry["account_id"] is None
    assert entry["ip"] == "127.0.0.1"
    assert entry["duration_ms"] >= 0
    assert entry["timestamp"].endswith("Z")
    assert response.headers["x-request-id"] == entry["request_id"]


async def test_query_string_is_never_logged() -> None:
    lines = Lines()
    async with client_for(echo_app, lines) as client:
        await client.get("/v1/tracking/3SABCD?postcode=1234AB&email=jan%40example.nl")
    raw = lines.buffer.getvalue().decode()
    assert "1234AB" not in raw
    assert "example.nl" not in raw
    assert "postcode" not in raw
    assert lines.requests()[0]["path"] == "/v1/tracking/3SABCD"


async def test_incoming_request_id_is_kept() -> None:
    lines = Lines()
    async with client_for(echo_app, lines) as client:
        response = await client.get("/x", headers={"X-Request-ID": "R-42.abc"})
    assert lines.requests()[0]["request_id"] == "R-42.abc"
    # The gateway returns the id it sent; the service adds the header only for ids it made.
    assert "x-request-id" not in response.headers


@pytest.mark.parametrize("bad", ["", "a" * 129, "has space", "semi;colon", "<script>"])
async def test_malformed_request_id_is_replaced(bad: str) -> None:
    lines = Lines()
    async with client_for(echo_app, lines) as client:
        response = await client.get("/x", headers={"X-Request-ID": bad})
    assigned = response.headers["x-request-id"]
    assert assigned != bad
    assert uuid.UUID(assigned).version == 7
    assert lines.requests()[0]["request_id"] == assigned


async def test_forwarded_for_is_believed_from_a_trusted_proxy() -> None:
    lines = Lines()
    async with client_for(echo_app, lines, peer="127.0.0.1") as client:
        await client.get("/x", headers={"X-Forwarded-For": "198.51.100.23"})
    assert lines.requests()[0]["ip"] == "198.51.100.23"


async def test_forwarded_for_is_ignored_from_an_untrusted_peer() -> None:
    lines = Lines()
    async with client_for(echo_app, lines, peer="203.0.113.9") as client:
        await client.get("/x", headers={"X-Forwarded-For": "198.51.100.23"})
    assert lines.requests()[0]["ip"] == "203.0.113.9"


def test_client_cannot_forge_its_address_through_the_proxy_chain() -> None:
    # The client sent "1.2.3.4" itself; the proxy appended the address it really saw.
    chain = "1.2.3.4, 198.51.100.23"
    assert client_ip("127.0.0.1", chain, LOOPBACK) == "198.51.100.23"
    # Several of our own proxies in a row are skipped.
    assert client_ip("127.0.0.1", "198.51.100.23, 127.0.0.2", LOOPBACK) == "198.51.100.23"
    # Garbage in the header never becomes the logged address.
    assert client_ip("127.0.0.1", "not-an-ip", LOOPBACK) == "127.0.0.1"
    assert client_ip("127.0.0.1", None, LOOPBACK) == "127.0.0.1"


async def test_port_defaults_from_forwarded_proto_when_host_has_none() -> None:
    lines = Lines()
    middleware = RequestLogMiddleware(
        echo_app,
        service="identity",
        trusted_proxies=LOOPBACK,
        writer=lines.writer,
        logger=lines.logger,
    )
    transport = httpx.ASGITransport(app=middleware, client=("127.0.0.1", 5000))
    async with httpx.AsyncClient(transport=transport, base_url="http://api.parcelpro.nl") as c:
        await c.get("/x", headers={"X-Forwarded-Proto": "https"})
    entry = lines.requests()[0]
    assert (entry["host"], entry["port"]) == ("api.parcelpro.nl", 443)


async def test_streamed_request_body_is_counted() -> None:
    lines = Lines()

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(10):
            yield b"z" * 4096

    async with client_for(echo_app, lines) as client:
        response = await client.post("/upload", content=chunks())
    assert response.status_code == 201
    entry = lines.requests()[0]
    assert entry["request_size"] == 40960
    assert entry["response_size"] == 1500 + 40960


async def test_unread_body_counts_its_announced_length() -> None:
    lines = Lines()
    async with client_for(ignore_body_app, lines) as client:
        await client.post("/nothing", content=b"q" * 777)
    entry = lines.requests()[0]
    assert entry["request_size"] == 777
    assert entry["response_size"] == 4


async def test_unhandled_error_is_a_500_problem_without_internals() -> None:
    lines = Lines()
    async with client_for(echo_app, lines) as client:
        response = await client.post("/boom", content=b"{}")
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == 500
    assert body["request_id"] == response.headers["x-request-id"]
    assert "secret internal detail" not in response.text
    assert "Traceback" not in response.text
    entry = lines.requests()[0]
    assert entry["status"] == 500
    assert entry["response_size"] == len(response.content)


async def test_service_app_has_the_request_log_outermost_instead_of_starlettes_500_layer() -> None:
    lines = Lines()
    app = ServiceApp(
        request_log=functools.partial(
            RequestLogMiddleware,
            service="shipping",
            trusted_proxies=LOOPBACK,
            writer=lines.writer,
            logger=lines.logger,
        ),
        openapi_url=None,
    )

    @app.get("/crash")
    async def crash() -> None:
        raise RuntimeError("secret internal detail")

    layers, layer = [], app.build_middleware_stack()
    while layer is not None:
        layers.append(type(layer))
        layer = getattr(layer, "app", None)
    assert layers[0] is RequestLogMiddleware
    assert ServerErrorMiddleware not in layers

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        crashed = await client.get("/crash")
        missing = await client.get("/nothing")
    assert crashed.status_code == 500
    assert crashed.headers["content-type"] == "application/problem+json"
    assert "secret internal detail" not in crashed.text
    assert missing.status_code == 404
    assert [(e["event"], e.get("status")) for e in lines.all()] == [
        ("unhandled_error", None),
        ("request", 500),
        ("request", 404),
    ]


async def test_account_requests_go_to_the_sink_anonymous_ones_do_not() -> None:
    lines = Lines()
    sink = RecordingSink()
    async with client_for(echo_app, lines, sink=sink) as client:
        await client.get("/anonymous")
        await client.get("/me")
    assert [r["path"] for r in sink.records] == ["/me"]
    assert sink.records[0]["account_id"] == str(ACCOUNT)
    assert lines.requests()[1]["account_id"] == str(ACCOUNT)


async def test_a_broken_sink_never_fails_the_request() -> None:
    lines = Lines()
    async with client_for(echo_app, lines, sink=RecordingSink(fail=True)) as client:
        response = await client.get("/me")
    assert response.status_code == 201
    assert [e["event"] for e in lines.all()] == ["request", "request_log_sink_failed"]


async def test_account_of_one_request_never_leaks_into_the_next() -> None:
    lines = Lines()
    shared_state: dict[str, Any] = {}

    async def server_sharing_state(scope: Scope, receive: Receive, send: Send) -> None:
        scope["state"] = shared_state  # some servers hand every request the same dict
        await middleware(scope, receive, send)

    middleware = RequestLogMiddleware(
        echo_app,
        service="shipping",
        trusted_proxies=LOOPBACK,
        writer=lines.writer,
        logger=lines.logger,
    )
    transport = httpx.ASGITransport(app=server_sharing_state)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        await client.get("/me")
        await client.get("/anonymous")
    assert [e["account_id"] for e in lines.requests()] == [str(ACCOUNT), None]
