"""OWASP API4 (unrestricted resource consumption): everything a client sends is bounded —
bodies at the gateway (413), page sizes, every string and every array (422), the time a
request may take — and every account and every address has a request budget (429 with
``Retry-After``), shared by all processes of a service through Redis when ``REDIS_URL`` is
set."""

from __future__ import annotations

import json
import os
import re
import subprocess
import uuid
from typing import Any

import httpx
import pytest
import redis.asyncio as redis

from services.gateway.__main__ import DEFAULT_CONFIG, caddy_binary
from services.shipping_api.settings import ShippingSettings
from tests.security.conftest import Running, shipping_settings_for, start_shipping_world
from tests.security.documents import (
    SERVICES,
    json_body,
    operations,
    resolve,
    subschemas,
)
from tests.support.access_matrix import RULES, Caller
from tests.support.db import rolled_back
from tests.support.stack import ROOT, Stack
from tests.support.tokens import TokenIssuer, bearer

REDIS_URL = "redis://127.0.0.1:6379/6"
TEN_MIB = 10 * 1024 * 1024
BOUNDED_FORMATS = {"uuid", "date", "date-time", "binary"}
TOO_LONG = frozenset({"string_too_long", "too_long"})
"""pydantic's error types for a string or list over its maximum."""
REASON = {"X-Access-Reason": "Security test: checking limits"}


def _is_bounded_string(schema: dict[str, Any]) -> bool:
    return (
        "maxLength" in schema
        or "enum" in schema
        or "const" in schema
        or schema.get("format") in BOUNDED_FORMATS
    )


def _strings_and_arrays(schema: dict[str, Any]) -> list[dict[str, Any]]:
    variants = schema.get("anyOf", [schema])
    return [v for v in variants if v.get("type") in {"string", "array"}]


@pytest.mark.parametrize("service", SERVICES)
def test_every_string_and_array_a_client_sends_is_bounded(service: str) -> None:
    unbounded: list[str] = []
    for method, path, operation in operations(service):
        body = json_body(service, operation)
        places = list(subschemas(service, body)) if body is not None else []
        for parameter in operation.get("parameters", []):
            where = f"{parameter['in']} {parameter['name']}"
            places.append((where, resolve(service, parameter["schema"])))
        for where, schema in places:
            for variant in _strings_and_arrays(schema):
                if variant["type"] == "string" and not _is_bounded_string(variant):
                    unbounded.append(f"{method} {path}: {where or 'body'} (string)")
                if variant["type"] == "array" and "maxItems" not in variant:
                    unbounded.append(f"{method} {path}: {where or 'body'} (array)")
    assert not unbounded, "\n".join(unbounded)


def _caller(service: str, method: str, path: str) -> Caller:
    rule = RULES[service][(method, path)]
    if rule.permits(Caller.ANONYMOUS) or not rule.allowed:
        return Caller.ANONYMOUS
    return sorted(rule.allowed, key=list(Caller).index)[0]


def _fill(path: str) -> str:
    return re.sub(r"\{carrier\}", "postnl", re.sub(r"\{[a-z_]+\}", str(uuid.uuid4()), path))


def _errors(response: httpx.Response) -> set[tuple[str, str]]:
    return {(e["field"], e["type"]) for e in response.json().get("errors") or []}


@pytest.mark.parametrize("service", SERVICES)
async def test_pages_above_the_maximum_size_are_422(
    service: str, running_services: dict[str, Running]
) -> None:
    running = running_services[service]
    paged = [
        (method, path)
        for method, path, operation in operations(service)
        if any(p["name"] == "limit" for p in operation.get("parameters", []))
    ]
    assert paged
    for method, path in paged:
        headers = {**running.headers(_caller(service, method, path)), **REASON}
        for limit in (201, 0, 10**12):
            response = await running.client.request(
                method, _fill(path), params={"limit": limit}, headers=headers
            )
            assert response.status_code == 422, f"{path}?limit={limit}: {response.text}"
            assert "limit" in {field for field, _ in _errors(response)}


@pytest.mark.parametrize("service", SERVICES)
async def test_strings_over_their_maximum_and_arrays_over_theirs_are_422(
    service: str, running_services: dict[str, Running]
) -> None:
    """Top-level properties of every body, one at a time: each is named in the 422."""
    running = running_services[service]
    missed: list[str] = []
    for method, path, operation in operations(service):
        body = json_body(service, operation)
        if body is None:
            continue
        headers = {**running.headers(_caller(service, method, path)), **REASON}
        headers["X-Privacy-Request-Token"] = "a-token"
        for name, schema in body.get("properties", {}).items():
            for variant in _strings_and_arrays(resolve(service, schema)):
                if variant["type"] == "string" and "maxLength" in variant:
                    value: Any = "7" * (variant["maxLength"] + 1)
                elif variant["type"] == "array" and "maxItems" in variant:
                    value = [{}] * (variant["maxItems"] + 1)
                else:
                    continue
                response = await running.client.request(
                    method, _fill(path), json={name: value}, headers=headers
                )
                named = {(field, TOO_LONG) for field, kind in _errors(response) if kind in TOO_LONG}
                if response.status_code != 422 or (name, TOO_LONG) not in named:
                    missed.append(f"{method} {path} {name}: {response.status_code}")
    assert not missed, "\n".join(missed)


# ----------------------------------------------------------------------------------------------
# Request budgets
# ----------------------------------------------------------------------------------------------


async def test_an_account_over_its_budget_gets_429_whichever_credential_it_uses(
    shipping_settings: ShippingSettings, issuer: TokenIssuer
) -> None:
    settings = shipping_settings_for(shipping_settings, rate_limit_per_account="6/minute")
    async with (
        rolled_back(settings) as database,
        start_shipping_world(settings, issuer, database) as world,
    ):
        account_id, key = world.account()
        login = bearer(issuer.user(account_id))
        other_id, other_key = world.account()
        client = world.running.client
        statuses = [(await client.get("/v1/shipments", headers=key)).status_code for _ in range(3)]
        statuses += [
            (await client.get("/v1/shipments", headers=login)).status_code for _ in range(3)
        ]
        limited = await client.get("/v1/shipments", headers=login)
        unaffected = await client.get("/v1/shipments", headers=other_key)

    assert statuses == [200] * 6
    assert limited.status_code == 429
    assert limited.headers["content-type"] == "application/problem+json"
    # Sliding window: the rest of this minute, then until last minute's six hits weigh five
    # (a sixth of a minute): never more than 70 s.
    assert 1 <= int(limited.headers["retry-after"]) <= 70
    assert unaffected.status_code == 200
    assert other_id != account_id


async def test_an_address_over_its_budget_gets_429_and_other_addresses_do_not(
    shipping_settings: ShippingSettings, issuer: TokenIssuer
) -> None:
    settings = shipping_settings_for(shipping_settings, rate_limit_per_ip="4/minute")
    async with (
        rolled_back(settings) as database,
        start_shipping_world(settings, issuer, database) as world,
    ):
        app = world.running.app
        mine = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app, client=("198.51.100.10", 5000)),
            base_url="http://testserver",
        )
        theirs = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app, client=("198.51.100.11", 5000)),
            base_url="http://testserver",
        )
        async with mine, theirs:
            # Anonymous and refused credentials count against the address alike.
            answers = [await mine.get("/v1/tracking/PP7K3QX9M2T4HWB") for _ in range(2)]
            answers += [
                await mine.get("/v1/shipments", headers=bearer("not-a-token")) for _ in range(2)
            ]
            limited = await mine.get("/v1/tracking/PP7K3QX9M2T4HWB")
            other = await theirs.get("/v1/tracking/PP7K3QX9M2T4HWB")
            operational = await mine.get("/healthz")

    assert [a.status_code for a in answers] == [404, 404, 401, 401]
    assert limited.status_code == 429
    assert int(limited.headers["retry-after"]) >= 1
    assert other.status_code == 404
    assert operational.status_code == 200


async def test_budgets_are_shared_by_every_process_through_redis(
    shipping_settings: ShippingSettings, issuer: TokenIssuer
) -> None:
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1)
    try:
        await client.ping()
    except redis.RedisError:
        pytest.skip("Redis is not running on 127.0.0.1:6379")
    finally:
        await client.aclose()
    settings = shipping_settings_for(
        shipping_settings, redis_url=REDIS_URL, rate_limit_per_account="5/minute"
    )
    account_id = uuid.uuid4()  # counters outlive the test in Redis: a fresh account per run
    key = bearer(issuer.api_keys.issue(account_id))
    statuses: list[int] = []
    async with rolled_back(settings) as database:
        for _ in range(2):  # two processes of the service, one after the other
            async with start_shipping_world(settings, issuer, database) as world:
                world.identity.add(account_id)
                for _ in range(3):
                    response = await world.running.client.get("/v1/shipments", headers=key)
                    statuses.append(response.status_code)

    assert statuses == [200] * 5 + [429]


# ----------------------------------------------------------------------------------------------
# The gateway
# ----------------------------------------------------------------------------------------------


@pytest.mark.e2e
def test_the_gateway_refuses_an_announced_body_over_ten_mebibytes(stack: Stack) -> None:
    response = httpx.post(
        f"{stack.gateway_url}/v1/privacy/requests",
        content=b" " * (TEN_MIB + 1),
        headers={"Content-Type": "application/json"},
        timeout=30,
    )
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"


@pytest.mark.e2e
def test_the_gateway_cuts_off_a_streamed_body_over_ten_mebibytes(stack: Stack) -> None:
    def chunks() -> Any:
        chunk = b" " * (1024 * 1024)
        for _ in range(11):
            yield chunk

    response = httpx.post(
        f"{stack.gateway_url}/v1/privacy/requests",
        content=chunks(),
        headers={"Content-Type": "application/json"},
        timeout=30,
    )
    assert response.status_code == 413


# ----------------------------------------------------------------------------------------------
# Timeouts: no slow client or slow service holds a connection open without bound
# ----------------------------------------------------------------------------------------------


def _adapted_gateway() -> dict[str, Any]:
    """The gateway's configuration as Caddy itself reads it (``caddy adapt``)."""
    env = {
        **os.environ,
        "GATEWAY_PORT": "8000",
        "DOCS_DIR": str(ROOT / "docs"),
        "SWAGGER_UI_DIR": str(ROOT / "docs"),
    }
    result = subprocess.run(
        [caddy_binary(), "adapt", "--config", str(DEFAULT_CONFIG), "--adapter", "caddyfile"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    adapted: dict[str, Any] = json.loads(result.stdout)
    return adapted


def _proxies(node: Any) -> list[dict[str, Any]]:
    if isinstance(node, dict):
        found = [node] if node.get("handler") == "reverse_proxy" else []
        return found + [p for value in node.values() for p in _proxies(value)]
    if isinstance(node, list):
        return [p for item in node for p in _proxies(item)]
    return []


def test_the_gateway_bounds_every_phase_of_a_request_in_time() -> None:
    config = _adapted_gateway()
    [server] = config["apps"]["http"]["servers"].values()
    second = 1_000_000_000
    # Slow headers (slowloris), slow bodies, slow readers and idle keep-alives all end.
    assert 0 < server["read_header_timeout"] <= 30 * second
    assert 0 < server["read_timeout"] <= 60 * second
    assert 0 < server["write_timeout"] <= 300 * second
    assert 0 < server["idle_timeout"] <= 300 * second
    proxies = _proxies(config)
    assert len(proxies) == 3
    for proxy in proxies:
        assert 0 < proxy["transport"]["dial_timeout"] <= 10 * second
        assert 0 < proxy["transport"]["response_header_timeout"] <= 300 * second


def test_calls_between_services_have_timeouts(running_services: dict[str, Running]) -> None:
    for running in running_services.values():
        timeout = running.app.state.http.timeout
        assert timeout.connect is not None
        assert timeout.connect <= 3
        assert timeout.read is not None
        assert timeout.read <= 120
