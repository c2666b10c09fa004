"""OWASP API8 (security misconfiguration): failures never show how the code looks inside,
CORS allows listed origins only (and credentials never with ``*``), the gateway sends the
security headers on every answer, unsupported methods are ``405`` with an ``Allow`` header
that lists exactly what the path supports, and the API documentation can be switched off."""

from __future__ import annotations

import itertools
import re
import uuid

import httpx
import pytest
from pydantic import ValidationError

from libs.common.app import Overrides
from services.identity_api.settings import IdentitySettings
from services.privacy_api.app import create_app as create_privacy
from services.privacy_api.register import endpoints as register_endpoints
from services.privacy_api.settings import PrivacySettings
from services.shipping_api.app import create_app as create_shipping
from services.shipping_api.settings import ShippingSettings
from tests.security.conftest import SERVICES_CREATE_APP, Running
from tests.support.access_matrix import routes_of
from tests.support.apps import running
from tests.support.db import rolled_back
from tests.support.shipping_factories import shipment_body
from tests.support.stack import Stack
from tests.support.tokens import TokenIssuer

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
# A frame reads `File "x.py", line 12, in f`; "line 1, column 29" of a JSON body is no trace.
STACK_TRACE = re.compile(r"Traceback|File \"|line \d+, in |RuntimeError|sqlalchemy|\.py\b")


async def test_an_unexpected_failure_is_a_bare_500_problem(
    privacy_settings: PrivacySettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    def explode() -> None:
        raise RuntimeError("connection to db-internal-7.parcelpro.lan refused")

    monkeypatch.setattr(register_endpoints, "register", explode)
    async with (
        rolled_back(privacy_settings) as database,
        running(create_privacy, privacy_settings, Overrides(database=database)) as (_, client),
    ):
        response = await client.get("/v1/privacy/processing-activities")

    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert set(body) == {"type", "title", "status", "detail", "instance", "request_id"}
    assert not STACK_TRACE.search(response.text)
    assert "db-internal" not in response.text


async def test_a_malformed_body_is_a_422_without_parser_internals(
    running_services: dict[str, Running],
) -> None:
    response = await running_services["identity"].client.post(
        "/v1/auth/register",
        content=b'{"email": "jan@example.nl", ',
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 422
    assert not STACK_TRACE.search(response.text)
    assert [e["field"] for e in response.json()["errors"]] == ["body"]


@pytest.mark.parametrize("origins", ["*", "https://app.parcelpro.nl,*"])
def test_a_wildcard_cors_origin_is_refused_at_start_up(origins: str) -> None:
    with pytest.raises(ValidationError, match="CORS_ORIGINS"):
        ShippingSettings(environment="test", cors_origins=origins)


async def test_cors_answers_listed_origins_only_and_never_with_a_wildcard(
    shipping_settings: ShippingSettings, issuer: TokenIssuer
) -> None:
    settings = shipping_settings.model_copy(
        update={"cors_origins": ["https://app.parcelpro.nl"], "outbox_worker_enabled": False}
    )
    preflight = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type",
    }
    async with (
        rolled_back(settings) as database,
        running(
            create_shipping,
            settings,
            Overrides(database=database, authenticator=issuer.authenticator()),
        ) as (_, client),
    ):
        allowed = await client.options(
            "/v1/shipments", headers={**preflight, "Origin": "https://app.parcelpro.nl"}
        )
        foreign = await client.options(
            "/v1/shipments", headers={**preflight, "Origin": "https://evil.example"}
        )
        simple = await client.get(
            "/v1/tracking/PP7K3QX9M2T4HWB", headers={"Origin": "https://evil.example"}
        )

    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "https://app.parcelpro.nl"
    assert allowed.headers["access-control-allow-credentials"] == "true"
    assert "origin" in allowed.headers["vary"].lower()
    assert foreign.status_code == 400
    assert "access-control-allow-origin" not in foreign.headers
    assert "access-control-allow-origin" not in simple.headers


WEB_APP = "https://app.parcelpro.nl"


def _preflight(method: str, headers: str) -> dict[str, str]:
    return {
        "Origin": WEB_APP,
        "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": headers,
    }


async def test_the_web_app_may_send_every_header_the_routes_read(
    shipping_settings: ShippingSettings,
    privacy_settings: PrivacySettings,
    issuer: TokenIssuer,
) -> None:
    cors = {"cors_origins": [WEB_APP], "outbox_worker_enabled": False}
    shipping = shipping_settings.model_copy(update=cors)
    privacy = privacy_settings.model_copy(update={"cors_origins": [WEB_APP]})
    async with (
        rolled_back(shipping) as shipping_database,
        running(
            create_shipping,
            shipping,
            Overrides(database=shipping_database, authenticator=issuer.authenticator()),
        ) as (_, shipping_client),
        rolled_back(privacy) as privacy_database,
        running(create_privacy, privacy, Overrides(database=privacy_database)) as (
            _,
            privacy_client,
        ),
    ):
        support_read = await shipping_client.options(
            f"/v1/shipments/{uuid.uuid4()}",
            headers=_preflight("GET", "authorization, x-access-reason, x-request-id"),
        )
        retried_create = await shipping_client.options(
            "/v1/shipments",
            headers=_preflight("POST", "authorization, content-type, idempotency-key"),
        )
        own_request = await privacy_client.options(
            f"/v1/privacy/requests/{uuid.uuid4()}",
            headers=_preflight("GET", "x-privacy-request-token"),
        )

    for preflight in (support_read, retried_create, own_request):
        assert preflight.status_code == 200, preflight.text
        assert preflight.headers["access-control-allow-origin"] == WEB_APP
    allowed = support_read.headers["access-control-allow-headers"].lower()
    assert {"x-access-reason", "x-request-id", "authorization"} <= set(allowed.split(", "))
    assert "X-Privacy-Request-Token" in own_request.headers["access-control-allow-headers"]


async def test_the_web_app_can_read_the_headers_it_acts_on(
    shipping_settings: ShippingSettings, issuer: TokenIssuer
) -> None:
    settings = shipping_settings.model_copy(
        update={"cors_origins": [WEB_APP], "outbox_worker_enabled": False}
    )
    headers = {
        "Origin": WEB_APP,
        "Idempotency-Key": str(uuid.uuid4()),
        "Authorization": f"Bearer {issuer.user()}",
    }
    async with (
        rolled_back(settings) as database,
        running(
            create_shipping,
            settings,
            Overrides(database=database, authenticator=issuer.authenticator()),
        ) as (_, client),
    ):
        created = await client.post("/v1/shipments", json=shipment_body(), headers=headers)
        replayed = await client.post("/v1/shipments", json=shipment_body(), headers=headers)

    assert created.status_code == 201, created.text
    assert replayed.headers["idempotent-replayed"] == "true"
    assert replayed.headers["location"] == created.headers["location"]
    exposed = {
        name.strip().lower()
        for name in replayed.headers["access-control-expose-headers"].split(",")
    }
    assert {
        "location",
        "idempotent-replayed",
        "retry-after",
        "x-request-id",
        "content-disposition",
    } <= exposed


@pytest.mark.parametrize("service", ["identity", "shipping", "privacy"])
async def test_unsupported_methods_are_405_with_the_paths_methods_in_allow(
    service: str, running_services: dict[str, Running]
) -> None:
    app_under_test = running_services[service]
    by_path: dict[str, set[str]] = {}
    for route in routes_of(service, app_under_test.app):
        by_path.setdefault(route.path, set()).add(route.method)
    wrong: list[str] = []
    for path, methods in by_path.items():
        concrete = re.sub(r"\{[a-z_]+\}", str(uuid.uuid4()), path)
        for method in (m for m in METHODS if m not in methods):
            response = await app_under_test.client.request(method, concrete)
            allow = {m.strip() for m in response.headers.get("allow", "").split(",") if m.strip()}
            if response.status_code != 405 or allow != methods:
                wrong.append(f"{method} {path}: {response.status_code} Allow={sorted(allow)}")
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize(
    ("service", "settings_fixture"),
    [
        ("identity", "identity_settings"),
        ("shipping", "shipping_settings"),
        ("privacy", "privacy_settings"),
    ],
)
async def test_the_api_documentation_can_be_switched_off(
    service: str,
    settings_fixture: str,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DOCS_ENABLED", "false")
    base = request.getfixturevalue(settings_fixture)
    settings = type(base)(database_url=base.database_url, environment="test")
    assert settings.docs_enabled is False
    create_app = SERVICES_CREATE_APP[service]
    async with (
        rolled_back(settings) as database,
        running(create_app, settings, Overrides(database=database)) as (app, client),
    ):
        answers = {
            path: (await client.get(path)).status_code
            for path in ("/openapi.json", "/docs", "/docs/assets/swagger-ui.css", "/redoc")
        }
        assert app.debug is False
    assert answers == dict.fromkeys(answers, 404)


# ----------------------------------------------------------------------------------------------
# At the gateway
# ----------------------------------------------------------------------------------------------

SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cross-origin-opener-policy": "same-origin",
}


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        pytest.param(
            "GET",
            "/v1/privacy/processing-activities",
            200,
        ),
        ("GET", "/v1/accounts/me", 401),
        ("GET", "/v1/shipments/not-a-uuid/events", 401),
        ("GET", "/internal/v1/subjects/export", 404),
        ("GET", "/nothing-here", 404),
        ("DELETE", "/v1/privacy/processing-activities", 405),
        ("GET", "/docs", 200),
        ("GET", "/healthz", 200),
    ],
)
def test_the_gateway_sends_security_headers_on_every_answer(
    stack: Stack, method: str, path: str, status: int
) -> None:
    response = httpx.request(method, f"{stack.gateway_url}{path}")
    assert response.status_code == status
    for name, value in SECURITY_HEADERS.items():
        assert response.headers.get(name) == value, name
    assert "content-security-policy" in response.headers
    assert "permissions-policy" in response.headers
    assert "server" not in response.headers
    assert "x-powered-by" not in response.headers
    if status >= 400:
        assert response.headers["content-type"] == "application/problem+json"
        assert not STACK_TRACE.search(response.text)


@pytest.mark.e2e
def test_the_gateway_passes_405_and_allow_through(stack: Stack) -> None:
    response = httpx.put(f"{stack.gateway_url}/v1/accounts/me", json={})
    assert response.status_code == 405
    assert {m.strip() for m in response.headers["allow"].split(",")} == {"GET", "PATCH"}


def test_production_settings_refuse_development_secrets() -> None:
    """A misconfigured production installation does not start with well-known keys."""
    for settings_class in (IdentitySettings, ShippingSettings, PrivacySettings):
        with pytest.raises(ValidationError):
            settings_class(environment="production")


def test_no_two_services_answer_the_same_public_path(running_services: dict[str, Running]) -> None:
    paths = {
        service: {r.path for r in routes_of(service, s.app) if r.path.startswith("/v1/")}
        for service, s in running_services.items()
    }
    for (a, first), (b, second) in itertools.combinations(paths.items(), 2):
        assert first.isdisjoint(second), (a, b)


@pytest.mark.parametrize(
    ("service", "method", "path", "kwargs", "field"),
    [
        (
            "identity",
            "POST",
            "/v1/auth/password-reset",
            {"json": {"email": "jan\u0000@example.nl"}},
            "email",
        ),
        (
            "identity",
            "POST",
            "/v1/auth/token",
            {"data": {"grant_type": "password", "username": "a\x00b", "password": "x"}},
            "username",
        ),
        (
            "shipping",
            "GET",
            "/v1/tracking/PP7K3QX9M2T4HWB",
            {"params": {"postcode": "3191\x00EE"}},
            "postcode",
        ),
        (
            "privacy",
            "POST",
            "/v1/privacy/requests",
            {"content": b'{"type": "access", "email": "a@b.nl", "message": "\\udc00"}'},
            "message",
        ),
        (
            "privacy",
            "POST",
            "/v1/privacy/requests",
            {"content": b'{"type": "access", "changes": {"na\\u0000me": "x"}}'},
            "changes.na\x00me",
        ),
    ],
)
async def test_text_that_cannot_be_stored_is_a_422_not_a_database_error(
    running_services: dict[str, Running],
    service: str,
    method: str,
    path: str,
    kwargs: dict[str, object],
    field: str,
) -> None:
    """PostgreSQL refuses NUL and UTF-8 cannot encode a lone surrogate: refused up front."""
    headers = {"Content-Type": "application/json"} if "content" in kwargs else {}
    response = await running_services[service].client.request(
        method,
        path,
        headers=headers,
        **kwargs,  # type: ignore[arg-type]
    )
    assert response.status_code == 422, response.text
    assert [e["field"] for e in response.json()["errors"]] == [field]
