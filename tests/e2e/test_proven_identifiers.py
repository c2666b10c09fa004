"""Privacy requests find data only through what the requester proved (decision 0303), end to end
through the gateway: someone who confirms their own mailbox, or logs in to their own account,
and names another person's phone number (or types that person's e-mail address into their
account) gets none of that person's account or parcels, and cannot erase or change them."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support.identity_app import PASSWORD
from tests.support.platform import (
    AccountHolder,
    issue_api_key,
    register_and_login,
    shipment_payload,
    six_digit_code,
    unique_email,
    wait_for_mail,
    wait_for_status,
)
from tests.support.stack import Stack

pytestmark = pytest.mark.e2e

VICTIM_PHONE = "+31687654321"
VICTIM_IBAN = "NL20INGB0001234567"
VICTIM_NAME = "Vera Slachtoffer"


@pytest.fixture
def client(stack: Stack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack.gateway_url, timeout=30.0) as c:
        yield c


def _zip(content: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def _victim(client: httpx.Client) -> tuple[AccountHolder, str, dict[str, str], list[str]]:
    """The other person: an account with their phone number and IBAN, and two parcels
    addressed to them (by phone, and by their private address) from a webshop.
    Returns the account, the private address, the shop's API headers and the parcel ids."""
    victim = register_and_login(
        client, name="Slachtoffer Handel B.V.", phone=VICTIM_PHONE, iban=VICTIM_IBAN
    )
    shop = register_and_login(client)
    _, key = issue_api_key(client, shop, "shipments:read", "shipments:write")
    auth = {"Authorization": f"Bearer {key}"}
    private = unique_email("vera")
    parcels = []
    for email in (unique_email("vera-elders"), private):
        payload = shipment_payload()
        payload["recipient"] |= {"name": VICTIM_NAME, "email": email, "phone": VICTIM_PHONE}
        created = client.post("/v1/shipments", json=payload, headers=auth)
        assert created.status_code == 201, created.text
        parcels.append(created.json()["id"])
    return victim, private, auth, parcels


def _parcels_untouched(client: httpx.Client, auth: dict[str, str], ids: list[str]) -> None:
    for shipment_id in ids:
        seen = client.get(f"/v1/shipments/{shipment_id}", headers=auth)
        assert seen.status_code == 200
        text = json.dumps(seen.json())
        assert VICTIM_NAME in text
        assert "Dorpsstraat" in text  # the delivery address was not redirected


def _nothing_of_the_victim(files: dict[str, bytes], victim: AccountHolder) -> None:
    held = b"".join(v for k, v in files.items() if k.startswith(("identity/", "shipping/")))
    for victims in (VICTIM_IBAN, VICTIM_NAME, victim.account_id, victim.email, "Slachtoffer"):
        assert victims.encode() not in held, victims


def _finish(client: httpx.Client, request_id: str, headers: dict[str, str]) -> dict[str, Any]:
    done = wait_for_status(
        client,
        f"/v1/privacy/requests/{request_id}",
        headers=headers,
        statuses={"completed", "failed"},
    )
    assert done["status"] == "completed", done
    return done


def test_a_mailbox_owner_naming_someone_elses_phone_gets_nothing_of_theirs(
    client: httpx.Client, stack: Stack
) -> None:
    victim, _, auth, parcels = _victim(client)
    mailbox = unique_email("nieuwsgierig")

    refused = client.post(
        "/v1/privacy/requests", json={"type": "access", "email": mailbox, "phone": VICTIM_PHONE}
    )
    assert refused.status_code == 422
    assert refused.headers["content-type"].startswith("application/problem+json")
    [error] = refused.json()["errors"]
    assert error["field"] == "phone"
    assert "privacy officer" in error["message"]

    created = client.post("/v1/privacy/requests", json={"type": "access", "email": mailbox})
    assert created.status_code == 201, created.text
    request = created.json()
    token = {"X-Privacy-Request-Token": request["access_token"]}
    code = six_digit_code(wait_for_mail(stack.base_dir / "var", mailbox))
    verified = client.post(
        f"/v1/privacy/requests/{request['id']}/verify", json={"code": code}, headers=token
    )
    assert verified.status_code == 200, verified.text
    _finish(client, request["id"], token)
    export = client.get(f"/v1/privacy/requests/{request['id']}/export", headers=token)
    assert export.status_code == 200
    _nothing_of_the_victim(_zip(export.content), victim)
    _parcels_untouched(client, auth, parcels)


def test_an_account_holder_typing_someone_elses_phone_and_address_gets_nothing_of_theirs(
    client: httpx.Client,
) -> None:
    victim, private, auth, parcels = _victim(client)
    holder = register_and_login(client)
    # Neither is confirmed by anyone: the phone never is, the new address is not (yet).
    changed = client.patch(
        "/v1/accounts/me",
        json={"phone": VICTIM_PHONE, "email": private, "current_password": PASSWORD},
        headers=holder.headers,
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["email_verified"] is False

    def request(**body: Any) -> str:
        created = client.post("/v1/privacy/requests", json=body, headers=holder.headers)
        assert created.status_code == 201, created.text
        assert created.json()["email"] is None  # an unconfirmed address finds nothing
        request_id: str = created.json()["id"]
        return request_id

    access = request(type="access")
    _finish(client, access, holder.headers)
    export = client.get(f"/v1/privacy/requests/{access}/export", headers=holder.headers)
    assert export.status_code == 200
    files = _zip(export.content)
    assert holder.account_id.encode() in b"".join(files.values())  # their own account is there
    _nothing_of_the_victim(files, victim)

    rectification = request(
        type="rectification",
        changes={"shipping": {"street": "Omleidingsweg", "house_number": "1"}},
    )
    _finish(client, rectification, holder.headers)
    _parcels_untouched(client, auth, parcels)

    erasure = request(type="erasure")
    _finish(client, erasure, holder.headers)
    _parcels_untouched(client, auth, parcels)
    me = client.get("/v1/accounts/me", headers=victim.headers)
    assert me.status_code == 200
    assert me.json()["iban"] == VICTIM_IBAN
    assert me.json()["phone"] == VICTIM_PHONE
