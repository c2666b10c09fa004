"""OWASP API5 (broken function level authorization): every route of every service, called by
every kind of caller, answers as the access matrix (``tests/support/access_matrix.py``) says:
the callers it serves get past authorization, the others get 401 (no usable credential) or
403 (a credential without the right). The routes come from the apps' route tables, so a new
route without a rule fails here."""

from __future__ import annotations

import uuid

import pytest

from tests.security.conftest import Running
from tests.support.access_matrix import RULES, Caller, Route, routes_of

SAMPLE_PATH_VALUES = {
    "tracking_code": "PP7K3QX9M2T4HWB",
    "carrier": "postnl",
}
BODY_METHODS = {"POST", "PUT", "PATCH"}


def concrete_path(path: str) -> str:
    """The route's path with every parameter filled in (a fresh UUID for ids)."""
    while "{" in path:
        start = path.index("{")
        end = path.index("}", start)
        name = path[start + 1 : end].split(":")[0]
        path = path[:start] + SAMPLE_PATH_VALUES.get(name, str(uuid.uuid4())) + path[end + 1 :]
    return path


async def call(running: Running, route: Route, caller: Caller) -> int:
    kwargs = {"json": {}} if route.method in BODY_METHODS else {}
    response = await running.client.request(
        route.method, concrete_path(route.path), headers=running.headers(caller), **kwargs
    )
    return response.status_code


@pytest.mark.parametrize("service", ["identity", "shipping", "privacy"])
def test_every_route_has_exactly_one_rule(
    service: str, running_services: dict[str, Running]
) -> None:
    app = running_services[service].app
    routes = {route.key for route in routes_of(service, app)}
    rules = set(RULES[service])
    assert routes - rules == set(), "routes without an access rule"
    assert rules - routes == set(), "rules of routes that no longer exist"


@pytest.mark.parametrize("service", ["identity", "shipping", "privacy"])
async def test_each_caller_reaches_exactly_the_routes_its_role_allows(
    service: str, running_services: dict[str, Running]
) -> None:
    running = running_services[service]
    mismatches: list[str] = []
    for route in routes_of(service, running.app):
        rule = RULES[service][route.key]
        for caller in Caller:
            status = await call(running, route, caller)
            if rule.permits(caller):
                if status in {401, 403}:
                    mismatches.append(f"{route.operation} as {caller}: {status}, expected access")
            elif status != rule.expected_denial(caller):
                expected = rule.expected_denial(caller)
                mismatches.append(f"{route.operation} as {caller}: {status}, expected {expected}")
    assert not mismatches, "\n".join(mismatches)
