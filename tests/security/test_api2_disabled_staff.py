"""A disabled staff member is refused by shipping and privacy too, not only by identity
(decision 0108): both ask identity's ``/internal/v1/staff/introspect`` about every staff token,
cached for at most 30 seconds, and refuse staff tokens when identity cannot answer.

Shipping and privacy run in-process against the real identity app (no authenticator of the
test's own), so tokens, JWKS, API-key and staff checks all go over HTTP as in production."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from libs.common.app import Overrides
from libs.common.auth import Authenticator, HttpStaffChecker, Role
from libs.common.clock import ManualClock
from services.privacy_api.settings import PrivacySettings
from services.shipping_api.app import create_app as create_shipping
from services.shipping_api.settings import ShippingSettings
from tests.security.conftest import NOW, shipping_settings_for
from tests.support.db import rolled_back
from tests.support.identity_app import Identity, bearer
from tests.support.privacy_harness import privacy_test_settings, running
from tests.support.shipping_apps import running_shipping
from tests.support.shipping_factories import shipment_body

REASON = {"X-Access-Reason": "ticket 4711: where is my parcel"}


class SwitchableIdentity(httpx.AsyncBaseTransport):
    """The real identity app as the services' only downstream; ``down`` makes it unreachable."""

    def __init__(self, identity: Identity) -> None:
        self.app = httpx.ASGITransport(app=identity.app)
        self.down = False
        self.staff_checks = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.down:
            raise httpx.ConnectError("connection refused", request=request)
        if request.url.path == "/internal/v1/staff/introspect":
            self.staff_checks += 1
        return await self.app.handle_async_request(request)


@dataclass
class StaffMember:
    id: uuid.UUID
    headers: dict[str, str]


async def new_staff(identity: Identity, role: Role) -> StaffMember:
    return StaffMember(*await identity.staff(role, scope="staff"))


async def disable(identity: Identity, staff: StaffMember) -> None:
    admin = await new_staff(identity, Role.ADMIN)
    response = await identity.client.post(
        f"/v1/staff/users/{staff.id}/disable", headers=admin.headers
    )
    assert response.status_code == 200, response.text
    assert response.json()["is_active"] is False


def staff_checker(app: Any) -> HttpStaffChecker:
    authenticator = app.state.authenticator
    assert isinstance(authenticator, Authenticator)
    assert isinstance(authenticator.staff, HttpStaffChecker)
    return authenticator.staff


@pytest.fixture
def downstream(identity: Identity) -> SwitchableIdentity:
    return SwitchableIdentity(identity)


@pytest.fixture
async def shipping(
    shipping_settings: ShippingSettings, downstream: SwitchableIdentity
) -> AsyncIterator[tuple[Any, httpx.AsyncClient]]:
    settings = shipping_settings_for(shipping_settings)
    async with rolled_back(settings) as database:
        overrides = Overrides(database=database, http_transport=downstream, clock=ManualClock(NOW))
        async with running_shipping(create_shipping, settings, overrides) as started:
            yield started


@asynccontextmanager
async def privacy_app(
    settings: PrivacySettings, downstream: SwitchableIdentity
) -> AsyncIterator[tuple[Any, httpx.AsyncClient]]:
    async with rolled_back(settings) as database:
        overrides = Overrides(database=database, http_transport=downstream, clock=ManualClock(NOW))
        async with running(settings, overrides) as started:
            yield started


@pytest.fixture
async def privacy(
    privacy_settings: PrivacySettings, tmp_path: Path, downstream: SwitchableIdentity
) -> AsyncIterator[tuple[Any, httpx.AsyncClient]]:
    async with privacy_app(privacy_test_settings(privacy_settings, tmp_path), downstream) as app:
        yield app


async def a_shipment(identity: Identity, client: httpx.AsyncClient) -> tuple[str, dict[str, str]]:
    _, holder = await identity.user()
    response = await client.post("/v1/shipments", json=shipment_body(), headers=holder)
    assert response.status_code == 201, response.text
    return str(response.json()["id"]), holder


async def test_disabled_support_user_is_refused_by_shipping(
    identity: Identity, shipping: tuple[Any, httpx.AsyncClient]
) -> None:
    app, client = shipping
    shipment_id, _ = await a_shipment(identity, client)
    support = await new_staff(identity, Role.SUPPORT)
    active = await client.get(f"/v1/shipments/{shipment_id}", headers=support.headers | REASON)
    assert active.status_code == 200, active.text
    assert active.json()["id"] == shipment_id

    await disable(identity, support)
    staff_checker(app).cache.clear()  # what at most 30 seconds of waiting does

    refused = await client.get(f"/v1/shipments/{shipment_id}", headers=support.headers | REASON)
    assert refused.status_code == 401, refused.text
    assert refused.headers["content-type"] == "application/problem+json"
    listing = await client.get("/v1/shipments", headers=support.headers | REASON)
    assert listing.status_code == 401


async def test_staff_token_of_a_disabled_user_is_refused_at_once_when_not_cached(
    identity: Identity, shipping: tuple[Any, httpx.AsyncClient]
) -> None:
    _, client = shipping
    shipment_id, _ = await a_shipment(identity, client)
    support = await new_staff(identity, Role.SUPPORT)
    await disable(identity, support)

    response = await client.get(f"/v1/shipments/{shipment_id}", headers=support.headers | REASON)
    assert response.status_code == 401


async def test_one_staff_check_serves_concurrent_and_following_requests(
    identity: Identity, shipping: tuple[Any, httpx.AsyncClient], downstream: SwitchableIdentity
) -> None:
    _, client = shipping
    shipment_id, _ = await a_shipment(identity, client)
    support = await new_staff(identity, Role.SUPPORT)
    for _ in range(3):
        response = await client.get(
            f"/v1/shipments/{shipment_id}", headers=support.headers | REASON
        )
        assert response.status_code == 200
    assert downstream.staff_checks == 1


async def test_account_holders_are_not_checked_as_staff(
    identity: Identity, shipping: tuple[Any, httpx.AsyncClient], downstream: SwitchableIdentity
) -> None:
    _, client = shipping
    shipment_id, holder = await a_shipment(identity, client)
    assert (await client.get(f"/v1/shipments/{shipment_id}", headers=holder)).status_code == 200
    assert downstream.staff_checks == 0


async def test_staff_are_refused_and_account_holders_served_while_identity_is_unreachable(
    identity: Identity, shipping: tuple[Any, httpx.AsyncClient], downstream: SwitchableIdentity
) -> None:
    app, client = shipping
    shipment_id, holder = await a_shipment(identity, client)
    support = await new_staff(identity, Role.SUPPORT)
    assert (
        await client.get(f"/v1/shipments/{shipment_id}", headers=support.headers | REASON)
    ).status_code == 200

    downstream.down = True
    staff_checker(app).cache.clear()  # the positive answer has expired

    refused = await client.get(f"/v1/shipments/{shipment_id}", headers=support.headers | REASON)
    assert refused.status_code == 503, refused.text  # decision 0606: unreachable is 503
    assert refused.json()["type"].endswith("service-unavailable")
    served = await client.get(f"/v1/shipments/{shipment_id}", headers=holder)
    assert served.status_code == 200, served.text


async def test_disabled_privacy_officer_is_refused_by_privacy(
    identity: Identity, privacy: tuple[Any, httpx.AsyncClient]
) -> None:
    app, client = privacy
    officer = await new_staff(identity, Role.PRIVACY_OFFICER)
    active = await client.get("/v1/privacy/incidents", headers=officer.headers)
    assert active.status_code == 200, active.text

    await disable(identity, officer)
    staff_checker(app).cache.clear()  # what at most 30 seconds of waiting does

    refused = await client.get("/v1/privacy/incidents", headers=officer.headers)
    assert refused.status_code == 401, refused.text
    assert (await client.get("/v1/privacy/disclosures", headers=officer.headers)).status_code == 401


async def test_privacy_refuses_staff_while_identity_is_unreachable(
    identity: Identity, privacy: tuple[Any, httpx.AsyncClient], downstream: SwitchableIdentity
) -> None:
    _, client = privacy
    officer = await new_staff(identity, Role.PRIVACY_OFFICER)
    assert (await client.get("/v1/privacy/incidents", headers=officer.headers)).status_code == 200
    _, holder = await identity.user()
    assert (await client.get("/v1/privacy/consents", headers=holder)).status_code == 200

    downstream.down = True
    cached = await client.get("/v1/privacy/incidents", headers=officer.headers)
    assert cached.status_code == 200  # the answer is cached for at most 30 seconds
    # Another officer (identity itself still logs in; only privacy's way to it is cut),
    # not yet checked: refused until identity answers.
    other = await new_staff(identity, Role.PRIVACY_OFFICER)
    refused = await client.get("/v1/privacy/incidents", headers=other.headers)
    assert refused.status_code == 503, refused.text
    served = await client.get("/v1/privacy/consents", headers=holder)
    assert served.status_code == 200, served.text


async def test_staff_introspection_answers_only_services(identity: Identity) -> None:
    support = await new_staff(identity, Role.SUPPORT)
    body = {"staff_id": str(support.id)}
    service = bearer(await identity.service_token("shipping_api"))
    active = await identity.client.post("/internal/v1/staff/introspect", json=body, headers=service)
    assert active.status_code == 200
    assert active.json() == {"active": True, "roles": ["support"]}

    await disable(identity, support)
    inactive = await identity.client.post(
        "/internal/v1/staff/introspect", json=body, headers=service
    )
    assert inactive.json() == {"active": False, "roles": []}
    unknown = await identity.client.post(
        "/internal/v1/staff/introspect", json={"staff_id": str(uuid.uuid4())}, headers=service
    )
    assert unknown.json() == {"active": False, "roles": []}
    as_staff = await identity.client.post(
        "/internal/v1/staff/introspect", json=body, headers=support.headers
    )
    assert as_staff.status_code == 401
    invalid = await identity.client.post(
        "/internal/v1/staff/introspect", json={"staff_id": "nope"}, headers=service
    )
    assert invalid.status_code == 422
    assert "staff_id" in invalid.text
