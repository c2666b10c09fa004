"""The readable summary of an export (AVG art. 15(1)(a)-(h)) names the purposes, legal bases,
recipients, retention and sources of the PII categories the services say they exported
(decision 0302), produced by the real identity and shipping export code behind privacy_api."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import orjson

from services.identity_api.settings import IdentitySettings
from services.shipping_api.settings import ShippingSettings
from tests.privacy.test_disclosure_exports import (
    IBAN,
    POLICE_CATEGORIES,
    SubjectRoutes,
    disclose,
    real_identity,
)
from tests.shipping.conftest import settings_for, start_shipping
from tests.support.identity_app import account_body, fast_settings
from tests.support.privacy_harness import Privacy, zip_members
from tests.support.tokens import TokenIssuer, bearer


@dataclass
class Webshop:
    account_id: uuid.UUID
    email: str


@asynccontextmanager
async def webshop_with_a_parcel(
    privacy: Privacy,
    issuer: TokenIssuer,
    identity_settings: IdentitySettings,
    shipping_settings: ShippingSettings,
) -> AsyncIterator[Webshop]:
    """A webshop account (with an IBAN) at the real identity that sent a parcel through the
    real shipping, both answering privacy's calls."""
    email = f"shop-{uuid.uuid4().hex[:8]}@example.nl"
    async with (
        real_identity(fast_settings(identity_settings), issuer) as identity,
        start_shipping(settings_for(shipping_settings), issuer) as shipping,
    ):
        registered = await identity.client.post(
            "/v1/auth/register", json=account_body(email=email, iban=IBAN)
        )
        assert registered.status_code == 201, registered.text
        account_id = uuid.UUID(registered.json()["account_id"])
        shipping.identity.add(account_id)
        await shipping.create(
            headers=bearer(issuer.api_keys.issue(account_id)),
            recipient_changes={"name": "Piet Pieters", "email": "piet@example.nl"},
        )
        routes = privacy.downstreams.transport.transports
        routes["shipping.test"] = shipping.client._transport
        routes["identity.test"] = SubjectRoutes(identity.transport, routes["identity.test"])
        yield Webshop(account_id, email)


async def test_access_summary_names_the_purposes_bases_and_recipients_of_account_and_parcels(
    privacy: Privacy,
    issuer: TokenIssuer,
    identity_settings: IdentitySettings,
    shipping_settings: ShippingSettings,
) -> None:
    async with webshop_with_a_parcel(privacy, issuer, identity_settings, shipping_settings) as shop:
        created = await privacy.request_as_account(shop.account_id, type="access")
        await privacy.drain()
    download = await privacy.client.get(
        f"/v1/privacy/requests/{created['id']}/export", headers=privacy.user(shop.account_id)
    )
    assert download.status_code == 200, download.text
    files = zip_members(download.content)
    text = files["summary.txt"].decode()
    for promised in (
        "We doen ons werk",  # purpose 1: the account and its shipments
        "AVG art. 6(1)(b) (contract)",
        "Payment details (financial)",  # the IBAN
        "Betaalsystemen",  # purpose 10, for the IBAN
        "Mollie B.V.",
        "Contact details of parcel recipients (recipient_contact)",
        "We laten u weten of een pakket onderweg is",  # purpose 2, for the parcel
        "Carriers (e.g. PostNL, DHL, DPD, GLS, UPS)",
        "From the webshop or sender that shipped a parcel to you",
    ):
        assert promised in text, promised
    # What the ZIP holds is still listed by its files.
    assert "- identity: account (1)" in text
    assert "- shipping: shipment_events (1), shipments (2)" in text  # the shipment, its parcel
    summary = orjson.loads(files["summary.json"])
    assert {"account_identifier", "contact", "financial", "recipient_contact"} <= set(
        summary["pii_categories"]
    )
    assert {"contract", "legal_obligation"} <= {b["key"] for b in summary["legal_bases"]}
    assert {"mollie", "carriers"} <= {r["key"] for r in summary["recipients"]}
    assert {c["key"] for c in summary["categories"]} == set(summary["pii_categories"])
    assert summary["records"]["identity"]["account"] == 1
    # The lines naming the categories are no records.
    shipments = orjson.loads(files["shipping/shipments.json"])
    assert sorted(record["_table"] for record in shipments) == ["parcels", "shipments"]
    assert summary["records"]["shipping"]["shipments"] == 2
    (account,) = orjson.loads(files["identity/account.json"])
    assert account["iban"] == IBAN
    assert b"pii_categories" not in b"".join(
        content for name, content in files.items() if not name.startswith("summary")
    )


async def test_disclosure_summary_names_only_the_requested_categories(
    privacy: Privacy,
    issuer: TokenIssuer,
    identity_settings: IdentitySettings,
    shipping_settings: ShippingSettings,
) -> None:
    async with webshop_with_a_parcel(privacy, issuer, identity_settings, shipping_settings) as shop:
        subject = {"account_id": str(shop.account_id), "email": shop.email}
        content = await disclose(privacy, subject, POLICE_CATEGORIES)
    files = zip_members(content)
    summary = orjson.loads(files["summary.json"])
    assert sorted(summary["pii_categories"]) == sorted(POLICE_CATEGORIES)
    assert {c["key"] for c in summary["categories"]} == set(POLICE_CATEGORIES)
    assert "mollie" not in {r["key"] for r in summary["recipients"]}
    text = files["summary.txt"].decode()
    assert "Address of parcel recipients (recipient_address)" in text
    assert "Shipment details (shipment_details)" in text
    for withheld in ("Payment details", "Contact details of account holders", "Mollie B.V."):
        assert withheld not in text, withheld
