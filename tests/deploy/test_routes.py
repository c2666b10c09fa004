"""The public routes are the same everywhere: Caddyfile, Caddyfile.prod and the Ingress."""

from __future__ import annotations

from typing import Any

import pytest

from tests.deploy.conftest import DEPLOY
from tests.deploy.routes import (
    GATEWAY,
    caddy_backend,
    caddy_routes,
    ingress_backend,
    ingress_paths,
)

SERVICES = {"identity", "shipping", "privacy"}
CADDYFILE = DEPLOY / "gateway" / "Caddyfile"
CADDYFILE_PROD = DEPLOY / "gateway" / "Caddyfile.prod"
NOT_PUBLIC = [
    "/internal/v1/subjects/export",
    "/internal/v1/api-keys/introspect",
    "/internal",
    "/metrics",
    "/readyz",
    "/",
    "/v1",
    "/v1/unknown",
    "/v1/authentication",
    "/v1/privacyx/requests",
    "/v1/shipmentsx",
    "/.well-known/openid-configuration",
]


def ingress(rendered: list[dict[str, Any]]) -> dict[str, Any]:
    (only,) = [r for r in rendered if r["kind"] == "Ingress"]
    return only


def normalised_service_routes(routes: Any) -> set[tuple[str, str, str]]:
    """Caddy's ``/x /x/*`` pair and a lone ``/x/*`` are the Ingress' Prefix ``/x``."""
    patterns = {(route.pattern, route.backend) for route in routes if route.backend in SERVICES}
    normalised = set()
    for pattern, backend in patterns:
        if pattern.endswith("/*"):
            normalised.add(("Prefix", pattern[:-2], backend))
        elif (pattern + "/*", backend) not in patterns:
            normalised.add(("Exact", pattern, backend))
    return normalised


def test_the_production_caddyfile_has_exactly_the_development_routes() -> None:
    assert caddy_routes(CADDYFILE_PROD) == caddy_routes(CADDYFILE)


def test_the_ingress_routes_each_service_prefix_exactly_as_caddy_does(
    rendered: list[dict[str, Any]],
) -> None:
    routes, _default = caddy_routes(CADDYFILE)
    paths, _ = ingress_paths(ingress(rendered))
    from_ingress = {
        (item.path_type, item.path, item.backend) for item in paths if item.backend in SERVICES
    }
    assert from_ingress == normalised_service_routes(routes)
    assert {backend for *_, backend in from_ingress} == SERVICES


def request_paths(routes: Any) -> list[str]:
    """Paths a client sends: every route, its sub-paths, and paths no route should take."""
    exact = {route.pattern for route in routes if not route.is_prefix}
    paths = list(NOT_PUBLIC)
    for route in routes:
        if route.is_prefix:
            base = route.pattern[:-1]
            paths += [base, f"{base}0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b", f"{base}x/y/z"]
            # A bare "/v1/tracking" (no route of its own in Caddy) reaches the service under the
            # Ingress' Prefix rule and the gateway under Caddy: both answer 404, so it is left out.
            if base.rstrip("/") in exact:
                paths.append(base.rstrip("/"))
        else:
            paths += [route.pattern, f"{route.pattern}/", f"{route.pattern}/sub"]
    return paths


def test_every_request_path_reaches_the_same_backend_through_caddy_and_the_ingress(
    rendered: list[dict[str, Any]],
) -> None:
    routes, default = caddy_routes(CADDYFILE)
    assert default == GATEWAY
    paths, default_backend = ingress_paths(ingress(rendered))
    assert default_backend == GATEWAY
    compared = request_paths(routes)
    assert len(compared) > 60
    mismatches = {
        path: (caddy_backend(routes, default, path), ingress_backend(paths, default_backend, path))
        for path in compared
        if caddy_backend(routes, default, path) != ingress_backend(paths, default_backend, path)
    }
    assert mismatches == {}


@pytest.mark.parametrize("path", NOT_PUBLIC)
def test_internal_and_operational_paths_only_reach_the_gateways_404(
    rendered: list[dict[str, Any]], path: str
) -> None:
    paths, default_backend = ingress_paths(ingress(rendered))
    assert ingress_backend(paths, default_backend, path) == GATEWAY
    routes, default = caddy_routes(CADDYFILE)
    assert caddy_backend(routes, default, path) == GATEWAY


def test_the_ingress_gets_its_certificate_from_lets_encrypt(
    rendered: list[dict[str, Any]], overlay: str
) -> None:
    resource = ingress(rendered)
    issuer = resource["metadata"]["annotations"]["cert-manager.io/cluster-issuer"]
    expected = "parcelpro-letsencrypt" if overlay == "prod" else "parcelpro-letsencrypt-staging"
    assert issuer == expected
    hosts = {rule["host"] for rule in resource["spec"]["rules"]}
    assert hosts == set(resource["spec"]["tls"][0]["hosts"])
    assert (
        resource["metadata"]["annotations"]["nginx.ingress.kubernetes.io/proxy-body-size"] == "10m"
    )
