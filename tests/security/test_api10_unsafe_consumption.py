"""OWASP API10 (unsafe consumption of APIs): what our services get back from each other is not
trusted blindly. When a service we call times out, fails, is unreachable or answers with
something that is not what the contract says, the caller answers its own client with a clean
502/503/504 problem (never a 500 or a wrong 401), changes nothing, and retries only calls that
are safe to repeat."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import orjson
import pytest
import stamina

from libs.common.app import Overrides
from libs.common.auth import HttpApiKeyResolver, ServiceTokenProvider
from libs.common.clock import ManualClock
from libs.common.errors import DomainError
from libs.common.http import ServiceCaller
from services.privacy_api.settings import PrivacySettings
from services.shipping_api.app import create_app as create_shipping
from services.shipping_api.settings import ShippingSettings
from tests.security.conftest import NOW, shipping_settings_for
from tests.support.db import rolled_back
from tests.support.privacy_doubles import Downstreams
from tests.support.privacy_harness import (
    Privacy,
    privacy_on_rolled_back,
    privacy_test_settings,
)
from tests.support.shipping_apps import running_shipping
from tests.support.shipping_factories import shipment_body
from tests.support.smtp import Inbox
from tests.support.tokens import TokenIssuer

ATTEMPTS = 3

FAULTS = {
    "timeout": 504,
    "server_error": 502,
    "unavailable": 503,
    "unreachable": 503,
    "malformed_json": 502,
    "wrong_shape": 502,
}
"""Each way a downstream call can go wrong, and what our client must get instead."""


def faulty_response(fault: str, request: httpx.Request) -> httpx.Response:
    if fault == "timeout":
        raise httpx.ReadTimeout("no answer in time", request=request)
    if fault == "unreachable":
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)
    if fault == "server_error":
        return httpx.Response(500, text="Internal Server Error")
    if fault == "unavailable":
        return httpx.Response(503, json={"title": "unavailable"})
    if fault == "malformed_json":
        return httpx.Response(
            200, content=b'{"email": "jan@', headers={"content-type": "application/json"}
        )
    return httpx.Response(200, json=["not", "the", "documented", "object"])


@pytest.fixture(autouse=True)
def _retries_without_waiting() -> Iterator[None]:
    with stamina.set_testing(True, attempts=ATTEMPTS):
        yield


# ----------------------------------------------------------------------------------------------
# The caller every service uses
# ----------------------------------------------------------------------------------------------


def counting_caller(fault: str, calls: Counter[str]) -> ServiceCaller:
    def handle(request: httpx.Request) -> httpx.Response:
        calls[request.method] += 1
        return faulty_response(fault, request)

    client = httpx.AsyncClient(transport=httpx.MockTransport(handle))
    return ServiceCaller(client, base_url="http://identity.test", name="identity")


@pytest.mark.parametrize(
    ("fault", "status"), [(f, s) for f, s in FAULTS.items() if f != "wrong_shape"]
)
async def test_a_failing_downstream_becomes_a_clean_problem_and_only_safe_calls_repeat(
    fault: str, status: int
) -> None:
    calls: Counter[str] = Counter()
    caller = counting_caller(fault, calls)
    outcomes: dict[str, int] = {}
    for method, idempotent in (("GET", None), ("POST", None), ("POST", True), ("PUT", None)):
        try:
            await caller.request_json(method, "/internal/thing", idempotent=idempotent, json={})
        except DomainError as exc:
            outcomes[f"{method}{'!' if idempotent else ''}"] = exc.status
    await caller.client.aclose()

    assert set(outcomes.values()) == {status}
    if fault == "malformed_json":
        # The answer arrived; reading it failed: nothing to retry.
        assert calls == Counter({"GET": 1, "POST": 2, "PUT": 1})
    else:
        # GET and PUT are idempotent; a POST only when the caller says so (introspection).
        assert calls == Counter({"GET": ATTEMPTS, "POST": 1 + ATTEMPTS, "PUT": ATTEMPTS})


# ----------------------------------------------------------------------------------------------
# shipping: API-key checks and the label's sender, both from identity
# ----------------------------------------------------------------------------------------------


class FakeIdentity:
    """identity as shipping sees it, with a fault switchable per path."""

    def __init__(self) -> None:
        self.account_id = uuid.uuid4()
        self.faults: dict[str, str] = {}
        self.calls: Counter[str] = Counter()

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def handle(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        route = path.rsplit("/", 1)[0] if path.startswith("/internal/v1/accounts/") else path
        self.calls[route] += 1
        if route in self.faults:
            return faulty_response(self.faults[route], request)
        if path == "/v1/auth/token":
            return httpx.Response(200, json={"access_token": "svc", "expires_in": 600})
        if path == "/internal/v1/api-keys/introspect":
            key = orjson.loads(request.content)["token"]
            return httpx.Response(
                200,
                json={
                    "active": True,
                    "key_id": str(uuid.uuid5(uuid.NAMESPACE_URL, key)),
                    "account_id": str(self.account_id),
                    "scopes": ["shipments:read", "shipments:write"],
                    "mode": "live",
                },
            )
        if path == f"/internal/v1/accounts/{self.account_id}":
            return httpx.Response(
                200,
                json={
                    "name": "De Boekenkast B.V.",
                    "street": "Coolsingel",
                    "house_number": "40",
                    "postcode": "3011 AD",
                    "city": "Rotterdam",
                    "country": "NL",
                },
            )
        return httpx.Response(404, json={"title": "Not found"})


@pytest.fixture
async def shipping_with_fake_identity(
    shipping_settings: ShippingSettings,
) -> AsyncIterator[tuple[httpx.AsyncClient, FakeIdentity]]:
    settings = shipping_settings_for(shipping_settings, identity_url="http://identity.test")
    identity = FakeIdentity()
    async with rolled_back(settings) as database:
        # No authenticator override: API keys are checked by identity over HTTP, as deployed.
        overrides = Overrides(
            database=database, http_transport=identity.transport(), clock=ManualClock(NOW)
        )
        async with running_shipping(create_shipping, settings, overrides) as (_, client):
            yield client, identity


def api_key() -> dict[str, str]:
    return {"Authorization": f"Bearer pp_live_{uuid.uuid4().hex}"}


@pytest.mark.parametrize(("fault", "status"), list(FAULTS.items()))
async def test_a_label_whose_sender_cannot_be_fetched_is_a_clean_problem_and_changes_nothing(
    shipping_with_fake_identity: tuple[httpx.AsyncClient, FakeIdentity], fault: str, status: int
) -> None:
    client, identity = shipping_with_fake_identity
    key = api_key()
    created = await client.post("/v1/shipments", json=shipment_body(), headers=key)
    assert created.status_code == 201, created.text
    identity.faults["/internal/v1/accounts"] = fault

    label = await client.get(f"/v1/shipments/{created.json()['id']}/label", headers=key)

    assert label.status_code == status, label.text
    assert label.headers["content-type"] == "application/problem+json"
    after = await client.get(f"/v1/shipments/{created.json()['id']}", headers=key)
    assert after.json()["status"] == "created"
    retried = fault in {"timeout", "server_error", "unavailable", "unreachable"}
    assert identity.calls["/internal/v1/accounts"] == (ATTEMPTS if retried else 1)


@pytest.mark.parametrize(("fault", "status"), list(FAULTS.items()))
async def test_an_api_key_that_cannot_be_checked_is_a_clean_problem_not_a_401(
    shipping_with_fake_identity: tuple[httpx.AsyncClient, FakeIdentity], fault: str, status: int
) -> None:
    client, identity = shipping_with_fake_identity
    identity.faults["/internal/v1/api-keys/introspect"] = fault

    response = await client.post("/v1/shipments", json=shipment_body(), headers=api_key())

    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    identity.faults.clear()
    key = api_key()
    listed = await client.get("/v1/shipments", headers=key)
    assert listed.json()["data"] == []


@pytest.mark.parametrize("fault", ["malformed_json", "wrong_shape"])
async def test_unusable_answers_to_a_service_token_request_are_502(fault: str) -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        return faulty_response(fault, request)

    async with httpx.AsyncClient(transport=httpx.MockTransport(handle)) as client:
        caller = ServiceCaller(client, base_url="http://identity.test", name="identity")
        tokens = ServiceTokenProvider(caller, client_id="shipping_api", client_secret="x" * 20)
        resolver = HttpApiKeyResolver(caller, tokens)
        with pytest.raises(DomainError) as raised:
            await tokens.token()
        assert raised.value.status == 502
        with pytest.raises(DomainError) as raised:
            await resolver.resolve("pp_live_0123")
        assert raised.value.status == 502


# ----------------------------------------------------------------------------------------------
# privacy: the account holder's address, from identity, when a request is made
# ----------------------------------------------------------------------------------------------


class FaultyAccounts(httpx.AsyncBaseTransport):
    """privacy's downstream transport, with identity's account route failing as told."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.fault: str | None = None
        self.calls = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.fault and request.url.path.startswith("/internal/v1/accounts/"):
            self.calls += 1
            return faulty_response(self.fault, request)
        return await self.inner.handle_async_request(request)


@pytest.fixture
async def privacy_with_faults(
    privacy_settings: PrivacySettings,
    tmp_path: Path,
    issuer: TokenIssuer,
    smtp: tuple[str, Inbox],
) -> AsyncIterator[tuple[Privacy, FaultyAccounts]]:
    settings = privacy_test_settings(privacy_settings, tmp_path)
    downstreams = Downstreams(issuer)
    faults = FaultyAccounts(downstreams.transport)
    downstreams.transport = faults  # type: ignore[assignment]
    async with privacy_on_rolled_back(
        settings,
        issuer=issuer,
        downstreams=downstreams,
        clock=ManualClock(NOW),
        smtp=smtp,
    ) as privacy:
        yield privacy, faults


@pytest.mark.parametrize(("fault", "status"), list(FAULTS.items()))
async def test_a_privacy_request_whose_account_cannot_be_read_is_a_clean_problem_and_not_stored(
    privacy_with_faults: tuple[Privacy, FaultyAccounts], fault: str, status: int
) -> None:
    privacy, faults = privacy_with_faults
    account_id = privacy.downstreams.identity.add_account(email="holder@example.nl")
    faults.fault = fault

    response = await privacy.client.post(
        "/v1/privacy/requests", json={"type": "access"}, headers=privacy.user(account_id)
    )

    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    listed = await privacy.client.get("/v1/privacy/requests", headers=privacy.officer())
    assert listed.json()["data"] == []
    retried = fault in {"timeout", "server_error", "unavailable", "unreachable"}
    assert faults.calls == (ATTEMPTS if retried else 1)
