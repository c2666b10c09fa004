"""The three services in-process for the OWASP API Top 10 tests, each with a credential for
every kind of caller: real ones from identity (in identity's own tests), tokens minted exactly
like identity's (``TokenIssuer``) for shipping and privacy, whose calls to identity go to its
test doubles."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import stamina
from fastapi import FastAPI

from libs.common.app import Overrides
from libs.common.auth import Role, Scope, ServiceScope
from libs.common.clock import ManualClock
from libs.common.db import Database
from services.identity_api.app import create_app as create_identity
from services.identity_api.settings import IdentitySettings
from services.privacy_api.app import create_app as create_privacy
from services.privacy_api.settings import PrivacySettings
from services.shipping_api.app import create_app as create_shipping
from services.shipping_api.settings import ShippingSettings
from tests.support.access_matrix import Caller
from tests.support.db import rolled_back
from tests.support.identity_app import Identity, fast_settings, identity_app
from tests.support.privacy_doubles import Downstreams
from tests.support.privacy_harness import (
    Privacy,
    privacy_on_rolled_back,
    privacy_test_settings,
)
from tests.support.shipping_apps import running_shipping
from tests.support.shipping_factories import shipment_body
from tests.support.shipping_identity import IdentityDouble, IdentityOrNetwork
from tests.support.smtp import Inbox
from tests.support.tokens import TokenIssuer, bearer

NOW = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
GENEROUS = "100000/minute"
"""Rate limits out of the way, except in the tests of rate limits."""

SERVICE_CLIENT_SCOPES = {
    "shipping_api": (
        ServiceScope.INTROSPECT,
        ServiceScope.ACCOUNTS_READ,
        ServiceScope.ACCOUNTS_NOTIFY,
        ServiceScope.CONSENTS_READ,
    ),
    "privacy_api": (ServiceScope.INTROSPECT, ServiceScope.ACCOUNTS_READ, ServiceScope.SUBJECTS),
}
"""What identity grants each service in development and test installations."""


@pytest.fixture(autouse=True)
def _no_retry_waits() -> Iterator[None]:
    with stamina.set_testing(True, attempts=1):
        yield


@dataclass
class Running:
    """One service in-process, and a credential (headers) for every caller."""

    service: str
    app: FastAPI
    client: httpx.AsyncClient
    callers: dict[Caller, dict[str, str]] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def headers(self, caller: Caller) -> dict[str, str]:
        return dict(self.callers.get(caller, {}))


def issued_callers(issuer: TokenIssuer, account_id: uuid.UUID) -> dict[Caller, dict[str, str]]:
    """Credentials of every caller for a service that verifies identity's tokens."""
    callers: dict[Caller, dict[str, str]] = {
        Caller.ANONYMOUS: {},
        Caller.ACCOUNT_HOLDER: bearer(issuer.user(account_id)),
        Caller.SUPPORT: bearer(issuer.staff(Role.SUPPORT)),
        Caller.PRIVACY_OFFICER: bearer(issuer.staff(Role.PRIVACY_OFFICER)),
        Caller.ADMIN: bearer(issuer.staff(Role.ADMIN)),
    }
    for caller in Caller:
        if caller.is_api_key:
            assert caller.scope is not None
            callers[caller] = bearer(issuer.api_keys.issue(account_id, [caller.scope]))
        elif caller.is_service:
            client = caller.value.removeprefix("service:")
            callers[caller] = bearer(issuer.service(client, SERVICE_CLIENT_SCOPES[client]))
    return callers


# ----------------------------------------------------------------------------------------------
# identity
# ----------------------------------------------------------------------------------------------


async def identity_callers(identity: Identity) -> dict[Caller, dict[str, str]]:
    _, login = await identity.user()
    callers: dict[Caller, dict[str, str]] = {
        Caller.ANONYMOUS: {},
        Caller.ACCOUNT_HOLDER: login,
    }
    for caller in Caller:
        if caller.is_api_key:
            created = await identity.api_key(login, scopes=[caller.scope])
            callers[caller] = bearer(created["key"])
        elif caller.is_service:
            client = caller.value.removeprefix("service:")
            callers[caller] = bearer(await identity.service_token(client))
    for role in Role:
        _, callers[Caller(role.value)] = await identity.staff(role, scope="staff")
    return callers


@pytest.fixture
def fast_identity_settings(identity_settings: IdentitySettings) -> IdentitySettings:
    return fast_settings(
        identity_settings,
        rate_limit_per_account=GENEROUS,
        rate_limit_per_ip=GENEROUS,
        registrations_per_ip=GENEROUS,
    )


@pytest.fixture
async def identity(fast_identity_settings: IdentitySettings) -> AsyncIterator[Identity]:
    async with identity_app(fast_identity_settings) as running:
        yield running


@pytest.fixture
async def identity_service(identity: Identity) -> Running:
    return Running("identity", identity.app, identity.client, await identity_callers(identity))


# ----------------------------------------------------------------------------------------------
# shipping
# ----------------------------------------------------------------------------------------------


@dataclass
class ShippingWorld:
    running: Running
    issuer: TokenIssuer
    identity: IdentityDouble
    database: Database
    clock: ManualClock

    async def create_shipment(self, headers: dict[str, str], **changes: Any) -> dict[str, Any]:
        response = await self.running.client.post(
            "/v1/shipments", json=shipment_body(**changes), headers=headers
        )
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()
        return created

    def account(self, *, mode: str = "live") -> tuple[uuid.UUID, dict[str, str]]:
        """A new account known to identity, and an API key of it with every scope."""
        account_id = uuid.uuid4()
        self.identity.add(account_id)
        return account_id, bearer(self.issuer.api_keys.issue(account_id, mode=mode))


def shipping_settings_for(base: ShippingSettings, **changes: Any) -> ShippingSettings:
    values: dict[str, Any] = {
        "outbox_worker_enabled": False,
        "purge_in_process": False,
        "rate_limit_per_account": GENEROUS,
        "rate_limit_per_ip": GENEROUS,
        "tracking_rate_limit": GENEROUS,
        "tracking_postcode_rate_limit": GENEROUS,
    }
    values.update(changes)
    return base.model_copy(update=values)


@asynccontextmanager
async def start_shipping_world(
    settings: ShippingSettings, issuer: TokenIssuer, database: Database
) -> AsyncIterator[ShippingWorld]:
    identity = IdentityDouble()
    account_id = uuid.uuid4()
    identity.add(account_id)
    clock = ManualClock(NOW)
    overrides = Overrides(
        database=database,
        http_transport=IdentityOrNetwork(identity, settings.identity_url),
        clock=clock,
        authenticator=issuer.authenticator(),
    )
    async with running_shipping(create_shipping, settings, overrides) as (app, client):
        running = Running("shipping", app, client, issued_callers(issuer, account_id))
        running.extra["account_id"] = account_id
        yield ShippingWorld(running, issuer, identity, database, clock)


@pytest.fixture
async def shipping_world(
    shipping_settings: ShippingSettings, issuer: TokenIssuer
) -> AsyncIterator[ShippingWorld]:
    settings = shipping_settings_for(shipping_settings)
    async with (
        rolled_back(settings) as database,
        start_shipping_world(settings, issuer, database) as world,
    ):
        yield world


@pytest.fixture
def shipping_service(shipping_world: ShippingWorld) -> Running:
    return shipping_world.running


# ----------------------------------------------------------------------------------------------
# privacy
# ----------------------------------------------------------------------------------------------


@pytest.fixture
def privacy_settings_for_security(
    privacy_settings: PrivacySettings, tmp_path: Path
) -> PrivacySettings:
    return privacy_test_settings(
        privacy_settings,
        tmp_path,
        rate_limit_per_account=GENEROUS,
        rate_limit_per_ip=GENEROUS,
        request_create_limit=GENEROUS,
        request_create_per_email_limit=GENEROUS,
        verify_limit=GENEROUS,
    )


@pytest.fixture
async def privacy(
    privacy_settings_for_security: PrivacySettings,
    issuer: TokenIssuer,
    smtp: tuple[str, Inbox],
) -> AsyncIterator[Privacy]:
    settings = privacy_settings_for_security
    downstreams = Downstreams(issuer)
    async with privacy_on_rolled_back(
        settings,
        issuer=issuer,
        downstreams=downstreams,
        clock=ManualClock(NOW),
        smtp=smtp,
    ) as harness:
        yield harness


@pytest.fixture
def privacy_service(privacy: Privacy) -> Running:
    account_id = privacy.downstreams.identity.add_account(email="holder@example.nl")
    running = Running(
        "privacy", privacy.app, privacy.client, issued_callers(privacy.issuer, account_id)
    )
    running.extra["account_id"] = account_id
    return running


@pytest.fixture
def running_services(
    identity_service: Running, shipping_service: Running, privacy_service: Running
) -> dict[str, Running]:
    return {"identity": identity_service, "shipping": shipping_service, "privacy": privacy_service}


ALL_SCOPES = [scope.value for scope in Scope]

SERVICES_CREATE_APP: dict[str, Callable[..., FastAPI]] = {
    "identity": create_identity,
    "shipping": create_shipping,
    "privacy": create_privacy,
}
