"""The platform as `make run` starts it: Caddy in front of the three services."""

from __future__ import annotations

import os
import time
from pathlib import Path

import httpx
import pytest

from services.gateway.openapi import merged_document
from tests.support.stack import SERVICES, Stack

pytestmark = pytest.mark.e2e


def test_every_service_is_ready_and_the_gateway_healthy(stack: Stack) -> None:
    for service in SERVICES:
        response = httpx.get(f"{stack.service_url(service)}/readyz")
        assert response.json() == {"status": "ready", "service": service}
    response = httpx.get(f"{stack.gateway_url}/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "service": "gateway"}


@pytest.mark.parametrize(
    "path", ["/internal/v1/subjects/export", "/internal/", "/readyz", "/metrics"]
)
def test_internal_and_operational_routes_are_not_exposed(stack: Stack, path: str) -> None:
    for method in ("GET", "POST"):
        response = httpx.request(method, f"{stack.gateway_url}{path}", json={})
        assert response.status_code == 404
        assert response.headers["content-type"] == "application/problem+json"


def test_gateway_serves_the_merged_openapi_document(stack: Stack) -> None:
    served = httpx.get(f"{stack.gateway_url}/openapi.json").json()
    assert served == merged_document()
    public_paths: set[str] = set()
    for service in SERVICES:
        own = httpx.get(f"{stack.service_url(service)}/openapi.json").json()
        public_paths |= {p for p in own["paths"] if p.startswith(("/v1/", "/.well-known/"))}
    assert set(served["paths"]) == public_paths
    assert not [p for p in served["paths"] if p.startswith("/internal")]


def test_docs_render_with_local_assets(stack: Stack) -> None:
    page = httpx.get(f"{stack.gateway_url}/docs")
    assert page.status_code == 200
    assert "swagger-ui" in page.text
    assert "cdn" not in page.text.lower()
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css", "swagger-initializer-parcelpro.js"):
        response = httpx.get(f"{stack.gateway_url}/docs/assets/{asset}")
        assert response.status_code == 200, asset
        assert len(response.content) > 100
    initializer = httpx.get(f"{stack.gateway_url}/docs/assets/swagger-initializer-parcelpro.js")
    assert "/openapi.json" in initializer.text


def test_request_id_is_generated_or_kept_and_returned(stack: Stack) -> None:
    kept = httpx.get(f"{stack.gateway_url}/healthz", headers={"X-Request-ID": "keep-me-1"})
    assert kept.headers["x-request-id"] == "keep-me-1"
    generated = httpx.get(f"{stack.gateway_url}/healthz", headers={"X-Request-ID": "bad id!"})
    assert generated.headers["x-request-id"] not in {"", "bad id!"}


def test_one_log_line_per_request_with_the_clients_address(stack: Stack) -> None:
    request_id = f"e2e-{time.time_ns()}"
    # Connect from 127.0.0.9 so the client's address differs from Caddy's (127.0.0.1).
    transport = httpx.HTTPTransport(local_address="127.0.0.9")
    with httpx.Client(transport=transport) as client:
        response = client.get(
            f"{stack.gateway_url}/v1/tracking/3SPPRO000000?postcode=1234AB&email=jan@example.nl",
            headers={
                "X-Request-ID": request_id,
                "X-Forwarded-For": "6.6.6.6",
                "Accept-Encoding": "identity",
            },
        )
    assert response.headers["x-request-id"] == request_id
    deadline = time.monotonic() + 5
    entries: list[dict[str, object]] = []
    while time.monotonic() < deadline and not entries:
        entries = [line for line in stack.log_lines() if line.get("request_id") == request_id]
        time.sleep(0.05)
    assert len(entries) == 1
    [entry] = entries
    assert {
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
    } <= set(entry)
    assert entry["ip"] == "127.0.0.9"
    assert entry["service"] == "shipping"
    assert entry["path"] == "/v1/tracking/3SPPRO000000"
    assert entry["host"] == "127.0.0.1"
    assert entry["port"] == stack.ports["gateway"]
    assert entry["status"] == response.status_code
    assert entry["response_size"] == len(response.content)
    raw = [line for path in stack.base_dir.glob("*.log") for line in path.read_text().splitlines()]
    assert not [line for line in raw if "1234AB" in line or "jan@example.nl" in line]


def test_bodies_over_ten_mebibytes_are_refused(stack: Stack) -> None:
    response = httpx.post(
        f"{stack.gateway_url}/v1/shipments",
        content=b"0" * (10 * 1024 * 1024 + 1),
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"


def test_security_headers_on_every_answer(stack: Stack) -> None:
    response = httpx.get(f"{stack.gateway_url}/v1/tracking/3SPPRO000000")
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert "server" not in response.headers


def test_caddy_runs_with_the_gateways_go_runtime_settings(stack: Stack) -> None:
    """The launcher replaces itself with Caddy, which must see GOGC, GOMEMLIMIT and
    GOMAXPROCS."""
    pid = stack.processes["gateway"].popen.pid
    environment = dict(
        entry.split("=", 1)
        for entry in Path(f"/proc/{pid}/environ").read_text().split("\0")
        if "=" in entry
    )
    assert Path(f"/proc/{pid}/exe").resolve().name == "caddy"
    assert environment["GOGC"] == "400"
    assert environment["GOMEMLIMIT"] == "192MiB"
    assert 1 <= int(environment["GOMAXPROCS"]) <= max(1, len(os.sched_getaffinity(0)) // 2)
