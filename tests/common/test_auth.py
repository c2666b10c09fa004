"""Credentials: tokens verified locally against JWKS, API keys introspected and cached,
service tokens only on internal routes, roles and scopes enforced."""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any

import httpx
import jwt
import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import APIRouter, Depends

from libs.common.app import Overrides, ServiceDefinition, build_app
from libs.common.auth import (
    API_AUDIENCE,
    Authenticator,
    HttpApiKeyResolver,
    HttpJwksKeySource,
    OptionalPrincipalDep,
    Principal,
    PrincipalDep,
    Role,
    Scope,
    ServiceScope,
    ServiceTokenProvider,
    require_account,
    require_service,
    require_staff,
    require_user,
)
from libs.common.errors import Unauthorized
from libs.common.http import ServiceCaller
from services.privacy_api.app import MIGRATIONS_DIR
from services.privacy_api.models import RequestLog
from services.privacy_api.settings import PrivacySettings
from tests.support.apps import running
from tests.support.db import rolled_back
from tests.support.tokens import TokenIssuer, bearer

router = APIRouter()


@router.get("/v1/whoami")
async def whoami(principal: PrincipalDep) -> dict[str, Any]:
    return {"kind": principal.kind, "account_id": str(principal.account_id)}


@router.post("/v1/shipments-like")
async def write(
    principal: Annotated[Principal, Depends(require_account(Scope.SHIPMENTS_WRITE))],
) -> dict[str, str]:
    return {"ok": "yes"}


@router.get("/v1/me-only")
async def me_only(principal: Annotated[Principal, Depends(require_user())]) -> dict[str, str]:
    return {"ok": "yes"}


@router.get("/v1/officer")
async def officer(
    principal: Annotated[Principal, Depends(require_staff(Role.PRIVACY_OFFICER))],
) -> dict[str, str]:
    return {"ok": "yes"}


@router.post("/internal/v1/thing")
async def internal(
    principal: Annotated[Principal, Depends(require_service(ServiceScope.SUBJECTS))],
) -> dict[str, str]:
    return {"ok": principal.subject}


@pytest.fixture
async def client(
    privacy_settings: PrivacySettings, issuer: TokenIssuer
) -> AsyncIterator[httpx.AsyncClient]:
    def create_app(settings: PrivacySettings, overrides: Overrides):  # type: ignore[no-untyped-def]
        return build_app(
            ServiceDefinition(
                settings=settings,
                title="auth",
                description="",
                version="0",
                routers=[router],
                request_log_model=RequestLog,
                migrations_dir=MIGRATIONS_DIR,
            ),
            overrides,
        )

    overrides = Overrides(authenticator=issuer.authenticator())
    async with rolled_back(privacy_settings) as database:
        overrides.database = database
        async with running(create_app, privacy_settings, overrides) as (_, c):
            yield c


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


async def test_account_token_is_accepted(client: httpx.AsyncClient, issuer: TokenIssuer) -> None:
    account = uuid.uuid4()
    response = await client.get("/v1/whoami", headers=bearer(issuer.user(account)))
    assert response.status_code == 200
    assert response.json() == {"kind": "user", "account_id": str(account)}


async def test_missing_credentials_are_401_with_challenge(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/whoami")
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")


def forged_tokens(issuer: TokenIssuer) -> dict[str, str]:
    account = str(uuid.uuid4())
    claims = {"sub": account, "aud": API_AUDIENCE, "kind": "user", "scope": "shipments:read"}
    valid = issuer.user(uuid.UUID(account))
    header, payload, _ = valid.split(".")
    return {
        "alg_none": f"{_b64({'alg': 'none', 'kid': issuer.kid})}.{payload}.",
        "wrong_signature": issuer.token(claims, key=Ed25519PrivateKey.generate()),
        "tampered_payload": f"{header}.{_b64({**claims, 'kind': 'staff', 'roles': ['admin']})}."
        + valid.split(".")[2],
        "expired": issuer.token(claims, ttl=-120),
        "wrong_audience": issuer.token({**claims, "aud": "someone-else"}),
        "wrong_issuer": TokenIssuer(issuer="evil").token(claims),
        "internal_audience_for_user": issuer.token({**claims, "aud": "parcelpro-internal"}),
        "hs256_with_public_key": jwt.encode(
            claims, "s" * 32, algorithm="HS256", headers={"kid": issuer.kid}
        ),
        "garbage": "not.a.token",
        "unknown_key_prefix": "pp_fake_0123456789",
        "unknown_api_key": "pp_live_0123456789abcdef",
    }


@pytest.mark.parametrize(
    "case",
    [
        "alg_none",
        "wrong_signature",
        "tampered_payload",
        "expired",
        "wrong_audience",
        "wrong_issuer",
        "internal_audience_for_user",
        "hs256_with_public_key",
        "garbage",
        "unknown_key_prefix",
        "unknown_api_key",
    ],
)
async def test_forged_or_stale_credentials_are_401(
    client: httpx.AsyncClient, issuer: TokenIssuer, case: str
) -> None:
    token = forged_tokens(issuer)[case]
    response = await client.get("/v1/whoami", headers=bearer(token))
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"


async def test_token_in_the_url_is_not_a_credential(
    client: httpx.AsyncClient, issuer: TokenIssuer
) -> None:
    token = issuer.user()
    response = await client.get("/v1/whoami", params={"access_token": token, "token": token})
    assert response.status_code == 401


async def test_api_key_scopes_are_enforced(client: httpx.AsyncClient, issuer: TokenIssuer) -> None:
    account = uuid.uuid4()
    reader = issuer.api_keys.issue(account, [Scope.SHIPMENTS_READ])
    writer = issuer.api_keys.issue(account, [Scope.SHIPMENTS_WRITE])
    assert (await client.post("/v1/shipments-like", headers=bearer(reader))).status_code == 403
    assert (await client.post("/v1/shipments-like", headers=bearer(writer))).status_code == 200
    # Account management needs a login, not a key.
    assert (await client.get("/v1/me-only", headers=bearer(writer))).status_code == 403
    assert (
        await client.get("/v1/me-only", headers=bearer(issuer.user(account)))
    ).status_code == 200


async def test_staff_roles(client: httpx.AsyncClient, issuer: TokenIssuer) -> None:
    assert (await client.get("/v1/officer", headers=bearer(issuer.user()))).status_code == 403
    support = issuer.staff(Role.SUPPORT)
    assert (await client.get("/v1/officer", headers=bearer(support))).status_code == 403
    for role in (Role.PRIVACY_OFFICER, Role.ADMIN):
        response = await client.get("/v1/officer", headers=bearer(issuer.staff(role)))
        assert response.status_code == 200


async def test_service_tokens_only_on_internal_routes(
    client: httpx.AsyncClient, issuer: TokenIssuer
) -> None:
    service = issuer.service("privacy_api", [ServiceScope.SUBJECTS])
    assert (await client.post("/internal/v1/thing", headers=bearer(service))).json() == {
        "ok": "service:privacy_api"
    }
    assert (await client.get("/v1/whoami", headers=bearer(service))).status_code == 401
    assert (await client.post("/internal/v1/thing")).status_code == 401
    user = issuer.user()
    assert (await client.post("/internal/v1/thing", headers=bearer(user))).status_code == 401
    weak = issuer.service("shipping_api", [ServiceScope.INTROSPECT])
    assert (await client.post("/internal/v1/thing", headers=bearer(weak))).status_code == 403


class FakeIdentity:
    """Identity's JWKS, token and introspection endpoints, counting calls."""

    def __init__(self, issuer: TokenIssuer) -> None:
        self.issuer = issuer
        self.calls: dict[str, int] = {"jwks": 0, "token": 0, "introspect": 0}
        self.active: set[str] = set()
        self.account = uuid.uuid4()

    def handler(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/.well-known/jwks.json":
            self.calls["jwks"] += 1
            jwk = json.loads(
                jwt.algorithms.OKPAlgorithm.to_jwk(self.issuer.private_key.public_key())
            )
            return httpx.Response(200, json={"keys": [{**jwk, "kid": self.issuer.kid}]})
        if request.url.path == "/v1/auth/token":
            self.calls["token"] += 1
            form = dict(x.split("=") for x in request.content.decode().split("&"))
            assert form["grant_type"] == "client_credentials"
            return httpx.Response(
                200,
                json={
                    "access_token": self.issuer.service(form["client_id"]),
                    "token_type": "bearer",
                    "expires_in": 600,
                },
            )
        if request.url.path == "/internal/v1/api-keys/introspect":
            self.calls["introspect"] += 1
            assert request.headers["authorization"].startswith("Bearer ")
            token = orjson.loads(request.content)["token"]
            if token not in self.active:
                return httpx.Response(200, json={"active": False})
            return httpx.Response(
                200,
                json={
                    "active": True,
                    "key_id": str(uuid.uuid4()),
                    "account_id": str(self.account),
                    "scopes": ["shipments:read"],
                    "mode": "test",
                },
            )
        return httpx.Response(404)


def http_authenticator(fake: FakeIdentity, *, ttl: float = 30.0) -> Authenticator:
    client = httpx.AsyncClient(transport=httpx.MockTransport(fake.handler))
    caller = ServiceCaller(client, base_url="http://identity", name="identity")
    tokens = ServiceTokenProvider(caller, client_id="shipping_api", client_secret="s")
    return Authenticator(
        key_source=HttpJwksKeySource(caller),
        api_keys=HttpApiKeyResolver(caller, tokens, ttl_seconds=ttl),
        issuer=fake.issuer.issuer,
    )


async def test_jwks_is_fetched_once_and_cached(issuer: TokenIssuer) -> None:
    fake = FakeIdentity(issuer)
    authenticator = http_authenticator(fake)
    for _ in range(5):
        principal = await authenticator.authenticate(issuer.user())
        assert principal.kind == "user"
    assert fake.calls["jwks"] == 1


async def test_unknown_kid_refetches_at_most_every_few_seconds(issuer: TokenIssuer) -> None:
    fake = FakeIdentity(issuer)
    authenticator = http_authenticator(fake)
    await authenticator.authenticate(issuer.user())
    stranger = TokenIssuer()
    for _ in range(3):
        with pytest.raises(Unauthorized):
            await authenticator.authenticate(stranger.user())
    assert fake.calls["jwks"] == 1


async def test_api_key_introspection_is_cached_and_revocation_shows(issuer: TokenIssuer) -> None:
    fake = FakeIdentity(issuer)
    authenticator = http_authenticator(fake, ttl=0.2)
    key = "pp_test_abc_0123456789abcdef"
    fake.active.add(key)
    first = await authenticator.authenticate(key)
    assert (first.kind, first.account_id, first.mode) == ("api_key", fake.account, "test")
    await authenticator.authenticate(key)
    assert fake.calls["introspect"] == 1
    assert fake.calls["token"] == 1
    fake.active.discard(key)  # revoked at identity
    await asyncio.sleep(0.25)
    with pytest.raises(Unauthorized):
        await authenticator.authenticate(key)
    assert fake.calls["introspect"] == 2


async def test_concurrent_requests_with_an_uncached_key_share_one_check(
    issuer: TokenIssuer,
) -> None:
    fake = FakeIdentity(issuer)
    authenticator = http_authenticator(fake)
    key = "pp_test_abc_0123456789abcdef"
    fake.active.add(key)
    principals = await asyncio.gather(*(authenticator.authenticate(key) for _ in range(30)))
    assert {p.account_id for p in principals} == {fake.account}
    assert fake.calls["introspect"] == 1
    # A key identity refuses is refused for every waiter, and is not checked again at once.
    other = "pp_test_abc_fedcba9876543210"
    results = await asyncio.gather(
        *(authenticator.authenticate(other) for _ in range(5)), return_exceptions=True
    )
    assert all(isinstance(r, Unauthorized) for r in results)
    assert fake.calls["introspect"] == 2


def test_introspection_cache_never_exceeds_thirty_seconds(issuer: TokenIssuer) -> None:
    fake = FakeIdentity(issuer)
    authenticator = http_authenticator(fake, ttl=3600)
    assert isinstance(authenticator.api_keys, HttpApiKeyResolver)
    assert authenticator.api_keys.cache.ttl == 30.0


async def test_a_key_identity_withdrew_is_refused_within_a_minute(issuer: TokenIssuer) -> None:
    """``rotate --immediately``: identity keeps the old key 60 s; so do the other services."""
    published = {"keys": True}

    def jwks(request: httpx.Request) -> httpx.Response:
        jwk = json.loads(jwt.algorithms.OKPAlgorithm.to_jwk(issuer.private_key.public_key()))
        keys = [{**jwk, "kid": issuer.kid}] if published["keys"] else []
        return httpx.Response(200, json={"keys": keys})

    client = httpx.AsyncClient(transport=httpx.MockTransport(jwks))
    source = HttpJwksKeySource(ServiceCaller(client, base_url="http://identity", name="identity"))
    authenticator = Authenticator(key_source=source, api_keys=issuer.api_keys, issuer=issuer.issuer)
    token = issuer.user()
    await authenticator.authenticate(token)
    published["keys"] = False  # rotated immediately at identity

    source._fetched_at -= 59  # a little under a minute later: still the cached key
    assert (await authenticator.authenticate(token)).kind == "user"
    source._fetched_at -= 2  # a minute has passed
    with pytest.raises(Unauthorized, match="unknown key"):
        await authenticator.authenticate(token)


@router.get("/v1/public")
async def public(principal: OptionalPrincipalDep) -> dict[str, str | None]:
    return {"kind": principal.kind if principal else None}


async def test_optional_credentials_are_documented_as_optional(
    client: httpx.AsyncClient, issuer: TokenIssuer
) -> None:
    assert (await client.get("/v1/public")).json() == {"kind": None}
    assert (await client.get("/v1/public", headers=bearer(issuer.user()))).json() == {
        "kind": "user"
    }
    document = (await client.get("/openapi.json")).json()
    assert document["paths"]["/v1/public"]["get"]["security"] == [{"HTTPBearer": []}, {}]
    assert document["paths"]["/v1/whoami"]["get"]["security"] == [{"HTTPBearer": []}]
    assert set(document["components"]["securitySchemes"]) == {"HTTPBearer"}
