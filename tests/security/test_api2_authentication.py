"""OWASP API2 (broken authentication): every service refuses forged, expired, misdirected and
misplaced credentials with 401 (and ``WWW-Authenticate``), and no ``/internal`` route answers
without a service token.

Identity signs with its own key store (the forgeries start from a token identity really
issued); shipping and privacy verify tokens minted exactly like identity's."""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
import orjson
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from libs.common.auth import ACCOUNT_SCOPES, API_AUDIENCE, INTERNAL_AUDIENCE
from libs.common.clock import ManualClock
from services.identity_api.settings import IdentitySettings
from services.privacy_api.settings import PrivacySettings
from services.shipping_api.settings import ShippingSettings
from tests.security.conftest import NOW, Running, shipping_settings_for, start_shipping_world
from tests.support.access_matrix import Caller, routes_of
from tests.support.db import rolled_back
from tests.support.identity_app import Identity, identity_app
from tests.support.privacy_doubles import Downstreams
from tests.support.privacy_harness import privacy_on_rolled_back
from tests.support.smtp import Inbox
from tests.support.tokens import TokenIssuer, bearer

Signer = Callable[[dict[str, Any]], Awaitable[str]]


@dataclass
class Target:
    """A service, a route that needs an account holder's token, and a way to sign claims with
    a key the service trusts."""

    client: httpx.AsyncClient
    path: str
    sign: Signer
    claims: dict[str, Any]
    kid: str
    public_key: Any


def user_claims(account_id: uuid.UUID, issuer: str = "parcelpro") -> dict[str, Any]:
    now = int(time.time())
    return {
        "iss": issuer,
        "aud": API_AUDIENCE,
        "sub": str(account_id),
        "kind": "user",
        "scope": " ".join(sorted(ACCOUNT_SCOPES)),
        "iat": now,
        "exp": now + 600,
        "jti": uuid.uuid4().hex,
    }


def issuer_target(issuer: TokenIssuer, client: httpx.AsyncClient, path: str) -> Target:
    async def sign(claims: dict[str, Any]) -> str:
        return jwt.encode(
            claims, issuer.private_key, algorithm="EdDSA", headers={"kid": issuer.kid}
        )

    return Target(
        client, path, sign, user_claims(uuid.uuid4()), issuer.kid, issuer.private_key.public_key()
    )


async def identity_target(identity: Identity) -> Target:
    account, _ = await identity.user()
    runtime = identity.app.state.identity_runtime

    async def sign(claims: dict[str, Any]) -> str:
        async with identity.database.session() as session:
            token: str = await runtime.keys.sign(session, identity.clock.now(), claims)
        return token

    token = await sign(user_claims(uuid.UUID(account["account_id"])))
    kid = jwt.get_unverified_header(token)["kid"]
    async with identity.database.session() as session:
        public_key = await runtime.keys.public_key(
            identity.database.sessionmaker, kid, identity.clock.now()
        )
        await session.rollback()
    claims = user_claims(uuid.UUID(account["account_id"]))
    return Target(identity.client, "/v1/accounts/me", sign, claims, kid, public_key)


@pytest.fixture(params=["identity", "shipping", "privacy"])
async def target(
    request: pytest.FixtureRequest,
    fast_identity_settings: IdentitySettings,
    shipping_settings: ShippingSettings,
    privacy_settings_for_security: PrivacySettings,
    issuer: TokenIssuer,
    smtp: tuple[str, Inbox],
) -> AsyncIterator[Target]:
    if request.param == "identity":
        async with identity_app(fast_identity_settings) as identity:
            yield await identity_target(identity)
    elif request.param == "shipping":
        settings = shipping_settings_for(shipping_settings)
        async with (
            rolled_back(settings) as database,
            start_shipping_world(settings, issuer, database) as world,
        ):
            yield issuer_target(issuer, world.running.client, "/v1/shipments")
    else:
        async with privacy_on_rolled_back(
            privacy_settings_for_security,
            issuer=issuer,
            downstreams=Downstreams(issuer),
            clock=ManualClock(NOW),
            smtp=smtp,
        ) as privacy:
            yield issuer_target(issuer, privacy.client, "/v1/privacy/consents")


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


async def refused(target: Target, **kwargs: Any) -> httpx.Response:
    response = await target.client.get(target.path, **kwargs)
    assert response.status_code == 401, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["www-authenticate"].startswith("Bearer")
    return response


async def test_a_genuine_token_is_accepted(target: Target) -> None:
    token = await target.sign(target.claims)
    response = await target.client.get(target.path, headers=bearer(token))
    assert response.status_code == 200, response.text


async def test_alg_none_is_refused(target: Target) -> None:
    header = b64(orjson.dumps({"alg": "none", "typ": "JWT", "kid": target.kid}))
    token = f"{header}.{b64(orjson.dumps(target.claims))}."
    await refused(target, headers=bearer(token))


async def test_a_signature_by_another_key_is_refused(target: Target) -> None:
    forged = jwt.encode(
        target.claims, Ed25519PrivateKey.generate(), algorithm="EdDSA", headers={"kid": target.kid}
    )
    await refused(target, headers=bearer(forged))


async def test_hmac_signed_with_the_public_key_is_refused(target: Target) -> None:
    """The algorithm-confusion attack: the public key as an HS256 secret."""
    public = target.public_key.public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    header = b64(orjson.dumps({"alg": "HS256", "typ": "JWT", "kid": target.kid}))
    payload = b64(orjson.dumps(target.claims))
    signature = jwt.api_jws.get_algorithm_by_name("HS256").sign(
        f"{header}.{payload}".encode(), public
    )
    await refused(target, headers=bearer(f"{header}.{payload}.{b64(signature)}"))


async def test_a_changed_payload_under_a_genuine_signature_is_refused(target: Target) -> None:
    header, _, signature = (await target.sign(target.claims)).split(".")
    tampered = {**target.claims, "sub": str(uuid.uuid4())}
    await refused(target, headers=bearer(f"{header}.{b64(orjson.dumps(tampered))}.{signature}"))


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param(
            {"exp": int(time.time()) - 3600, "iat": int(time.time()) - 4500}, id="expired"
        ),
        pytest.param({"aud": "someone-else"}, id="foreign-audience"),
        pytest.param({"aud": INTERNAL_AUDIENCE}, id="internal-audience"),
        pytest.param({"iss": "https://evil.example"}, id="foreign-issuer"),
        pytest.param({"kind": "service"}, id="user-claiming-to-be-a-service"),
        pytest.param({"kind": "api_key"}, id="token-claiming-to-be-an-api-key"),
    ],
)
async def test_expired_or_misdirected_tokens_are_refused(
    target: Target, changes: dict[str, Any]
) -> None:
    await refused(target, headers=bearer(await target.sign({**target.claims, **changes})))


@pytest.mark.parametrize("claim", ["exp", "aud", "iss", "sub"])
async def test_tokens_without_a_required_claim_are_refused(target: Target, claim: str) -> None:
    claims = {k: v for k, v in target.claims.items() if k != claim}
    await refused(target, headers=bearer(await target.sign(claims)))


@pytest.mark.parametrize("parameter", ["access_token", "token", "api_key"])
async def test_credentials_in_the_url_are_not_accepted(target: Target, parameter: str) -> None:
    """Query strings end up in logs, histories and Referer headers (RFC 6750 5.3)."""
    token = await target.sign(target.claims)
    await refused(target, params={parameter: token})


@pytest.mark.parametrize(
    "authorization",
    [
        "Bearer pp_abc_0123456789abcdef",
        "Bearer pp_live_00000000000000000000000000000000",
        "Bearer pp_test_not-a-key",
        "Bearer not-a-token",
        "Basic dXNlcjpwYXNz",
        "Token abc",
        "Bearer",
    ],
)
async def test_unknown_keys_and_other_schemes_are_refused(
    target: Target, authorization: str
) -> None:
    await refused(target, headers={"Authorization": authorization})


@pytest.mark.parametrize("service", ["identity", "shipping", "privacy"])
@pytest.mark.parametrize(
    "caller", [Caller.ANONYMOUS, Caller.ACCOUNT_HOLDER, Caller.KEY_SHIPMENTS_READ, Caller.ADMIN]
)
async def test_internal_routes_need_a_service_token(
    service: str, caller: Caller, running_services: dict[str, Running]
) -> None:
    running = running_services[service]
    internal = [r for r in routes_of(service, running.app) if r.path.startswith("/internal/")]
    assert internal
    for route in internal:
        path = route.path.replace("{account_id}", str(uuid.uuid4()))
        response = await running.client.request(
            route.method,
            path,
            headers=running.headers(caller),
            json={} if route.method == "POST" else None,
        )
        assert response.status_code == 401, f"{route.operation} as {caller}: {response.text}"
