"""A disclosure's export holds exactly the data of the requested categories (decision 0308),
produced by the real identity and shipping export code behind privacy_api."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
from asgi_lifespan import LifespanManager

from libs.common.app import Overrides
from services.identity_api.app import create_app as create_identity
from services.identity_api.settings import IdentitySettings
from services.shipping_api.settings import ShippingSettings
from tests.shipping.conftest import settings_for, start_shipping
from tests.support.db import rolled_back
from tests.support.identity_app import account_body, fast_settings
from tests.support.privacy_harness import Privacy, zip_members
from tests.support.tokens import TokenIssuer, bearer

POLICE_CATEGORIES = ["recipient_contact", "recipient_address", "shipment_details"]
IBAN = "NL91ABNA0417164300"


class SubjectRoutes(httpx.AsyncBaseTransport):
    """identity.test as privacy sees it: the real identity answers the data-subject routes and
    the account look-up, the double still issues privacy's service token (signed by the test's
    issuer, which the real services are set to trust)."""

    def __init__(self, real: httpx.AsyncBaseTransport, double: httpx.AsyncBaseTransport) -> None:
        self.real = real
        self.double = double

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.startswith(("/internal/v1/subjects/", "/internal/v1/accounts/")):
            return await self.real.handle_async_request(request)
        return await self.double.handle_async_request(request)


@dataclass
class RealIdentity:
    client: httpx.AsyncClient
    transport: httpx.AsyncBaseTransport


@asynccontextmanager
async def real_identity(
    settings: IdentitySettings, issuer: TokenIssuer
) -> AsyncIterator[RealIdentity]:
    async with rolled_back(settings) as database:
        app = create_identity(
            settings, Overrides(database=database, authenticator=issuer.authenticator())
        )
        async with LifespanManager(app, startup_timeout=30, shutdown_timeout=30):
            transport = httpx.ASGITransport(app=app, client=("10.0.0.3", 40000))
            async with httpx.AsyncClient(
                transport=transport, base_url="http://identity.test"
            ) as client:
                yield RealIdentity(client, transport)


async def disclose(privacy: Privacy, subject: dict[str, Any], categories: list[str]) -> bytes:
    officer = privacy.officer()
    created = await privacy.client.post(
        "/v1/privacy/disclosures",
        json={
            "authority": "police",
            "authority_name": "Politie Eenheid Rotterdam",
            "authority_reference": "PL1700-2026-123456",
            "legal_basis": "Art. 126nd Sv, order of the officier van justitie",
            "requested_data": "Shipments sent to this e-mail address in 2026",
            "subject": subject,
            "categories": categories,
            "powers_verification": "Order signed by the OvJ; confirmed by phone with the parket.",
        },
        headers=officer,
    )
    assert created.status_code == 201, created.text
    disclosure_id = created.json()["id"]
    decided = await privacy.client.post(
        f"/v1/privacy/disclosures/{disclosure_id}/decision",
        json={"decision": "approved", "reason": "Valid order under art. 126nd Sv."},
        headers=officer,
    )
    assert decided.status_code == 200, decided.text
    await privacy.drain()
    download = await privacy.client.get(
        f"/v1/privacy/disclosures/{disclosure_id}/export", headers=officer
    )
    assert download.status_code == 200, download.text
    return download.content


async def test_police_disclosure_holds_the_recipients_shipments_and_not_their_account(
    privacy: Privacy,
    issuer: TokenIssuer,
    identity_settings: IdentitySettings,
    shipping_settings: ShippingSettings,
) -> None:
    email = f"jan-{uuid.uuid4().hex[:8]}@example.nl"
    async with (
        real_identity(fast_settings(identity_settings), issuer) as identity,
        start_shipping(settings_for(shipping_settings), issuer) as shipping,
    ):
        # Jan has a webshop account with an IBAN and an API key, and receives parcels.
        registered = await identity.client.post(
            "/v1/auth/register", json=account_body(email=email, iban=IBAN)
        )
        assert registered.status_code == 201, registered.text
        account_id = registered.json()["account_id"]
        key = await identity.client.post(
            "/v1/api-keys",
            json={"name": "Jans kassakoppeling", "scopes": ["shipments:read"]},
            headers=bearer(issuer.user(uuid.UUID(account_id))),
        )
        assert key.status_code == 201, key.text
        sent = await shipping.create(
            reference="ORDER-7731",
            recipient_changes={"name": "Jan Jansen", "email": email, "street": "Kerkstraat"},
        )
        routes = privacy.downstreams.transport.transports
        routes["shipping.test"] = shipping.client._transport
        routes["identity.test"] = SubjectRoutes(identity.transport, routes["identity.test"])
        subject = {"account_id": account_id, "email": email}

        # Unlimited, the same services would hand over the IBAN and the API key.
        everything = await identity.client.post(
            "/internal/v1/subjects/export",
            json={"subject": subject, "request_id": "check-1"},
            headers=bearer(issuer.service("privacy_api")),
        )
        assert IBAN.encode() in everything.content
        assert b"Jans kassakoppeling" in everything.content

        content = await disclose(privacy, subject, POLICE_CATEGORIES)

    files = zip_members(content)
    data = {name for name in files if not name.startswith("summary")}
    assert {"shipping/shipments.json", "shipping/shipments.csv"} <= data
    assert all(name.startswith("shipping/") for name in data), data
    (shipment,) = orjson.loads(files["shipping/shipments.json"])
    assert shipment["id"] == sent["id"]
    assert shipment["tracking_code"] == sent["tracking_code"]
    assert shipment["recipient_name"] == "Jan Jansen"
    assert shipment["recipient_email"] == email
    assert shipment["recipient_street"] == "Kerkstraat"
    assert shipment["recipient_postcode"]
    assert shipment["reference"] == "ORDER-7731"
    # The sender's account id is account_identifier: not asked for.
    assert "account_id" not in shipment
    everything_in_zip = b"".join(files.values())
    assert IBAN.encode() not in everything_in_zip
    assert b"Jans kassakoppeling" not in everything_in_zip
    assert key.json()["prefix"].encode() not in everything_in_zip


async def test_identity_exports_only_the_columns_of_the_requested_categories(
    issuer: TokenIssuer, identity_settings: IdentitySettings
) -> None:
    email = f"shop-{uuid.uuid4().hex[:8]}@example.nl"
    async with real_identity(fast_settings(identity_settings), issuer) as identity:
        registered = await identity.client.post(
            "/v1/auth/register", json=account_body(email=email, iban=IBAN)
        )
        account_id = registered.json()["account_id"]
        body = {"subject": {"account_id": account_id}, "request_id": "d-1"}
        headers = bearer(issuer.service("privacy_api"))
        response = await identity.client.post(
            "/internal/v1/subjects/export",
            json={**body, "categories": ["financial"]},
            headers=headers,
        )
        assert response.status_code == 200, response.text
        meta, *lines = [orjson.loads(line) for line in response.content.splitlines()]
        # The line before the records names the PII categories the export holds of the table.
        assert meta == {"table": "accounts", "pii_categories": ["financial"]}
        assert [(line["category"], line["table"]) for line in lines] == [("account", "accounts")]
        record = lines[0]["record"]
        assert record["iban"] == IBAN
        assert record["account_holder"]
        assert "created_at" in record  # unannotated: says what the row is
        for other in ("id", "email", "name", "street", "kvk_number", "password_hash"):
            assert other not in record, other
        wrong = await identity.client.post(
            "/internal/v1/subjects/export",
            json={**body, "categories": ["secrets"]},
            headers=headers,
        )
        assert wrong.status_code == 422
        assert wrong.json()["errors"][0]["field"] == "categories.0"
