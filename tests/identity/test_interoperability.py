"""What the other services rely on: ``libs.common.auth`` over HTTP accepts identity's real
access tokens (JWKS) and API keys (introspection with a client-credentials service token)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from libs.common.auth import (
    Authenticator,
    HttpApiKeyResolver,
    HttpJwksKeySource,
    PrincipalKind,
    Role,
    ServiceTokenProvider,
)
from libs.common.errors import Unauthorized
from libs.common.http import ServiceCaller
from services.identity_api.models import StaffRole
from services.identity_api.staff.service import create_staff
from tests.support.identity_app import PASSWORD, Identity


@pytest.fixture
async def remote(identity: Identity) -> AsyncIterator[Authenticator]:
    """An authenticator as shipping_api builds it, talking HTTP to the identity app."""
    transport = httpx.ASGITransport(app=identity.app)
    async with httpx.AsyncClient(transport=transport) as http:
        caller = ServiceCaller(http, base_url="http://identity", name="identity")
        tokens = ServiceTokenProvider(
            caller, client_id="shipping_api", client_secret="dev-only-shipping_api"
        )
        yield Authenticator(
            key_source=HttpJwksKeySource(caller),
            api_keys=HttpApiKeyResolver(caller, tokens),
            issuer=identity.settings.jwt_issuer,
        )


async def test_access_token_is_accepted_by_another_service(
    identity: Identity, remote: Authenticator
) -> None:
    account = await identity.register()
    tokens = await identity.login(account["email"])
    principal = await remote.authenticate(tokens["access_token"])
    assert principal.kind is PrincipalKind.USER
    assert str(principal.account_id) == account["account_id"]
    assert principal.has_scopes("shipments:read", "shipments:write")


async def test_staff_token_carries_its_role(identity: Identity, remote: Authenticator) -> None:
    async with identity.database.session() as session:
        await create_staff(
            session,
            identity.app.state.identity_runtime.passwords,
            email="fg@parcelpro.nl",
            role=StaffRole.PRIVACY_OFFICER,
            password=PASSWORD,
            name="Functionaris",
            now=identity.clock.now(),
        )
        await session.commit()
    tokens = await identity.login("fg@parcelpro.nl", PASSWORD)
    principal = await remote.authenticate(tokens["access_token"])
    assert principal.kind is PrincipalKind.STAFF
    assert principal.roles == frozenset({Role.PRIVACY_OFFICER})


async def test_api_key_is_accepted_by_another_service_until_revoked(
    identity: Identity, remote: Authenticator
) -> None:
    account, headers = await identity.user()
    created = await identity.api_key(headers, scopes=["shipments:read"], mode="test")
    principal = await remote.authenticate(created["key"])
    assert principal.kind is PrincipalKind.API_KEY
    assert str(principal.account_id) == account["account_id"]
    assert principal.scopes == frozenset({"shipments:read"})
    assert principal.mode == "test"

    await identity.client.delete(f"/v1/api-keys/{created['id']}", headers=headers)
    assert isinstance(remote.api_keys, HttpApiKeyResolver)
    remote.api_keys.cache.clear()  # what 30 seconds of waiting does
    with pytest.raises(Unauthorized):
        await remote.authenticate(created["key"])


async def test_service_token_from_identity_works_on_internal_routes_elsewhere(
    identity: Identity, remote: Authenticator
) -> None:
    token = await identity.service_token("privacy_api")
    principal = await remote.authenticate(token)
    assert principal.kind is PrincipalKind.SERVICE
    assert principal.subject == "service:privacy_api"
    assert principal.has_scopes("internal:subjects")
