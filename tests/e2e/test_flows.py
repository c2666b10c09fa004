"""The platform's promises, end to end through the gateway, with every service running as a
real process: an account holder's day, a webshop plug-in's API key, and the privacy rights
of an account holder and of a parcel recipient without an account."""

from __future__ import annotations

import csv
import io
import json
import time
import uuid
import zipfile
from collections.abc import Iterator

import httpx
import pytest

from tests.support.platform import (
    AccountHolder,
    issue_api_key,
    register_and_login,
    shipment_payload,
    six_digit_code,
    wait_for_mail,
    wait_for_status,
)
from tests.support.stack import Stack

pytestmark = pytest.mark.e2e


@pytest.fixture
def client(stack: Stack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack.gateway_url, timeout=30.0) as c:
        yield c


@pytest.fixture
def holder(client: httpx.Client) -> AccountHolder:
    return register_and_login(client)


def test_register_log_in_and_read_the_account(client: httpx.Client, holder: AccountHolder) -> None:
    me = client.get("/v1/accounts/me", headers=holder.headers)
    assert me.status_code == 200
    account = me.json()
    assert account["email"] == holder.email
    assert account["kvk_number"] == "12345678"
    assert account["iban"] == "NL91ABNA0417164300"  # the owner sees it unmasked
    assert account["debtor_number"]
    assert not [k for k in account if "hash" in k or "password" in k]
    refused = client.patch("/v1/accounts/me", json={"debtor_number": "1"}, headers=holder.headers)
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["field"] == "debtor_number"


def test_api_key_works_on_shipping_and_stops_when_revoked(
    client: httpx.Client, holder: AccountHolder
) -> None:
    key_id, key = issue_api_key(client, holder, "shipments:read", "shipments:write")
    auth = {"Authorization": f"Bearer {key}"}
    payload = shipment_payload()
    idempotency = {"Idempotency-Key": str(uuid.uuid4())}
    created = client.post("/v1/shipments", json=payload, headers=auth | idempotency)
    assert created.status_code == 201, created.text
    replay = client.post("/v1/shipments", json=payload, headers=auth | idempotency)
    assert replay.status_code == 201
    assert replay.json()["id"] == created.json()["id"]
    other_body = client.post("/v1/shipments", json=shipment_payload(), headers=auth | idempotency)
    assert other_body.status_code == 422

    listed = client.get("/v1/shipments", headers=auth)
    assert listed.status_code == 200
    assert [s["id"] for s in listed.json()["data"]] == [created.json()["id"]]

    label = client.get(f"/v1/shipments/{created.json()['id']}/label?format=pdf", headers=auth)
    assert label.status_code == 200
    assert label.content.startswith(b"%PDF")

    tracking = client.get(f"/v1/tracking/{created.json()['tracking_code']}")
    assert tracking.status_code == 200
    for personal in ("Piet", "Dorpsstraat", "example.nl", "+316"):
        assert personal not in tracking.text

    assert client.delete(f"/v1/api-keys/{key_id}", headers=holder.headers).status_code == 204
    deadline = time.monotonic() + 10  # the stack caches key checks for 2 s (production: 30 s)
    status = 200
    while time.monotonic() < deadline and status == 200:
        status = client.get("/v1/shipments", headers=auth).status_code
        time.sleep(0.2)
    assert status == 401


def test_another_accounts_shipment_is_not_found(client: httpx.Client) -> None:
    owner, stranger = register_and_login(client), register_and_login(client)
    _, owner_key = issue_api_key(client, owner, "shipments:read", "shipments:write")
    _, stranger_key = issue_api_key(client, stranger, "shipments:read")
    created = client.post(
        "/v1/shipments", json=shipment_payload(), headers={"Authorization": f"Bearer {owner_key}"}
    ).json()
    seen = client.get(
        f"/v1/shipments/{created['id']}", headers={"Authorization": f"Bearer {stranger_key}"}
    )
    assert seen.status_code == 404


def _read_zip(content: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def test_account_holders_access_request_exports_every_service(
    client: httpx.Client, holder: AccountHolder
) -> None:
    _, key = issue_api_key(client, holder, "shipments:read", "shipments:write")
    payload = shipment_payload()
    created = client.post("/v1/shipments", json=payload, headers={"Authorization": f"Bearer {key}"})
    assert created.status_code == 201
    assert client.get("/v1/accounts/me", headers=holder.headers).status_code == 200
    time.sleep(1.5)  # request-log entries are written in batches every second

    request = client.post("/v1/privacy/requests", json={"type": "access"}, headers=holder.headers)
    assert request.status_code == 201, request.text
    assert request.json()["status"] in {"verified", "in_progress", "completed"}
    url = f"/v1/privacy/requests/{request.json()['id']}"
    done = wait_for_status(client, url, headers=holder.headers, statuses={"completed", "failed"})
    assert done["status"] == "completed", done

    export = client.get(f"{url}/export", headers=holder.headers)
    assert export.status_code == 200
    files = _read_zip(export.content)
    identity_json = b"".join(
        v for k, v in files.items() if k.startswith("identity/") and k.endswith(".json")
    )
    assert b"12345678" in identity_json  # KvK
    assert b"NL91ABNA0417164300" in identity_json  # IBAN, decrypted for its owner
    shipping_files = {k: v for k, v in files.items() if k.startswith("shipping/")}
    assert any(
        payload["reference"].encode() in v for k, v in shipping_files.items() if k.endswith(".json")
    )
    assert any(
        payload["reference"] in v.decode() for k, v in shipping_files.items() if k.endswith(".csv")
    )
    request_logs = [k for k in files if "request_log" in k]
    assert {k.rsplit(".", 1)[1] for k in request_logs} == {"json", "csv"}
    identity_log = json.loads(files["identity/request_log.json"])
    assert any(entry["path"] == "/v1/accounts/me" for entry in identity_log)
    rows = list(csv.DictReader(io.StringIO(files["identity/request_log.csv"].decode())))
    assert rows
    assert {"ip", "timestamp", "path", "status"} <= set(rows[0])
    assert any(name.startswith("summary") for name in files)

    stranger = register_and_login(client)
    assert client.get(url, headers=stranger.headers).status_code == 404
    assert client.get(f"{url}/export", headers=stranger.headers).status_code == 404


def test_recipient_without_account_erases_their_data(client: httpx.Client, stack: Stack) -> None:
    shop = register_and_login(client)
    _, key = issue_api_key(client, shop, "shipments:read", "shipments:write")
    auth = {"Authorization": f"Bearer {key}"}
    payload = shipment_payload()
    recipient = payload["recipient"]["email"]
    shipment = client.post("/v1/shipments", json=payload, headers=auth).json()

    created = client.post("/v1/privacy/requests", json={"type": "erasure", "email": recipient})
    assert created.status_code == 201, created.text
    request = created.json()
    assert request["status"] == "pending_verification"
    token = {"X-Privacy-Request-Token": request["access_token"]}
    code = six_digit_code(wait_for_mail(stack.base_dir / "var", recipient))
    verified = client.post(
        f"/v1/privacy/requests/{request['id']}/verify", json={"code": code}, headers=token
    )
    assert verified.status_code == 200, verified.text
    done = wait_for_status(
        client,
        f"/v1/privacy/requests/{request['id']}",
        headers=token,
        statuses={"completed", "failed"},
    )
    assert done["status"] == "completed", done

    after = client.get(f"/v1/shipments/{shipment['id']}", headers=auth).json()
    text = json.dumps(after)
    for personal in ("Piet de Vries", recipient, "+31612345678", "Dorpsstraat"):
        assert personal not in text
    assert after["tracking_code"] == shipment["tracking_code"]
    tracking = client.get(f"/v1/tracking/{shipment['tracking_code']}")
    assert tracking.status_code == 200
    assert tracking.json()["status"] == shipment["status"]
