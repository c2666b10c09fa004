"""OWASP API9 (improper inventory management): the routes the apps really serve are exactly the
documented ones — the committed merged document (``docs/openapi.json``, rebuilt by
``make openapi``) for the public API, each service's own document for everything else — and
the gateway routes every documented public path to a service and nothing undocumented."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path

import httpx
import pytest

from tests.security.conftest import Running
from tests.security.documents import METHODS, documents
from tests.support.access_matrix import routes_of
from tests.support.stack import Stack

COMMITTED = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"
PUBLIC_PREFIXES = ("/v1/", "/.well-known/")
UNDOCUMENTED_ON_PURPOSE = {
    ("GET", "/docs"): "the Swagger UI page itself",
    ("GET", "/docs/assets/swagger-initializer-parcelpro.js"): "the Swagger UI start script",
    ("GET", "/metrics"): "Prometheus scrapes it inside the cluster; never routed",
}


def documented(document: dict[str, object]) -> set[tuple[str, str]]:
    paths = document["paths"]
    assert isinstance(paths, dict)
    return {(m.upper(), p) for p, item in paths.items() for m in item if m in METHODS}


def test_the_public_routes_of_the_running_apps_are_the_committed_document(
    running_services: dict[str, Running],
) -> None:
    committed = documented(json.loads(COMMITTED.read_text(encoding="utf-8")))
    served = {
        route.key
        for service, running in running_services.items()
        for route in routes_of(service, running.app)
        if route.path.startswith(PUBLIC_PREFIXES)
    }
    assert served - committed == set(), "served but not in docs/openapi.json (make openapi)"
    assert committed - served == set(), "in docs/openapi.json but served by no app"


@pytest.mark.parametrize("service", ["identity", "shipping", "privacy"])
def test_every_route_is_in_its_services_own_document(
    service: str, running_services: dict[str, Running]
) -> None:
    served = {route.key for route in routes_of(service, running_services[service].app)}
    own = documented(documents()[service])
    assert served - own == set(UNDOCUMENTED_ON_PURPOSE)
    assert own - served == set()


def test_internal_routes_stay_out_of_the_public_document() -> None:
    committed = json.loads(COMMITTED.read_text(encoding="utf-8"))
    assert [path for path in committed["paths"] if not path.startswith(PUBLIC_PREFIXES)] == []


@pytest.mark.e2e
def test_the_gateway_routes_every_documented_path_to_a_service(stack: Stack) -> None:
    """A service's problem names the request's path (``instance``); the gateway's own 404
    does not. Nothing documented may end in the gateway's catch-all."""
    committed = json.loads(COMMITTED.read_text(encoding="utf-8"))
    unrouted = []
    with httpx.Client(base_url=stack.gateway_url, timeout=10) as client:
        for path, item in committed["paths"].items():
            method = next(m for m in METHODS if m in item)
            concrete = re.sub(r"\{carrier\}", "postnl", path)
            concrete = re.sub(r"\{[a-z_]+\}", str(uuid.uuid4()), concrete)
            response = client.request(method.upper(), concrete)
            reached = response.status_code < 400 or "instance" in response.json()
            if not reached:
                unrouted.append(f"{method.upper()} {path}: {response.status_code}")
    assert unrouted == []


@pytest.mark.e2e
@pytest.mark.parametrize(
    "path", ["/internal/v1/accounts/00000000-0000-0000-0000-000000000000", "/metrics", "/readyz"]
)
def test_the_gateway_exposes_nothing_undocumented(stack: Stack, path: str) -> None:
    response = httpx.get(f"{stack.gateway_url}{path}")
    assert response.status_code == 404
    assert "instance" not in response.json()
