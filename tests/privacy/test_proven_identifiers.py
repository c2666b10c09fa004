"""Data subject requests find data only through what the requester proved (decision 0303): the
e-mail address confirmed with the mailed code, the account they are logged in to and its
confirmed address, or what the privacy officer checked. Someone who proves their own mailbox
and names another person's phone number, or types it into their own account, gets nothing of
that person: no export, no erasure, no rectification."""

from __future__ import annotations

import uuid
from typing import Any

import orjson
from sqlalchemy import func, select

from services.privacy_api.models import PrivacyRequest
from services.privacy_api.subjects.blind_index import phone_index
from tests.support.privacy_doubles import Row
from tests.support.privacy_harness import Privacy, mailed_code, zip_members

VICTIM_PHONE = "+31687654321"


def victims_data(privacy: Privacy) -> tuple[uuid.UUID, Row]:
    """Another person's account (found by its phone number) and a parcel addressed to them by
    phone only."""
    identity, shipping = privacy.downstreams.identity, privacy.downstreams.shipping
    account = identity.add_account(email="victim@example.nl", iban="NL20INGB0001234567")
    identity.rows_about(account_id=account)[0].phone = VICTIM_PHONE
    parcel = shipping.add_shipment(
        recipient_email="victim.private@example.nl",
        recipient_phone=VICTIM_PHONE,
        recipient_name="Vera Slachtoffer",
    )
    return account, parcel


async def request_with_an_unproven_phone(
    privacy: Privacy, email: str, **body: Any
) -> tuple[dict[str, Any], str]:
    """A request without an account that carries a phone number nobody proved, as requests
    made before such numbers were refused still do; verified with the requester's own code."""
    created = await privacy.client.post("/v1/privacy/requests", json={"email": email, **body})
    assert created.status_code == 201, created.text
    request = created.json()
    async with privacy.app.state.database.session() as session:
        row = await session.get(PrivacyRequest, uuid.UUID(request["id"]))
        assert row is not None
        row.phone = VICTIM_PHONE
        row.phone_index = phone_index(privacy.settings.blind_index_key, VICTIM_PHONE)
        await session.commit()
    token = request["access_token"]
    code = mailed_code((await privacy.inbox.wait_for(email))[-1])
    verified = await privacy.client.post(
        f"/v1/privacy/requests/{request['id']}/verify",
        json={"code": code},
        headers={"X-Privacy-Request-Token": token},
    )
    assert verified.status_code == 200, verified.text
    await privacy.drain()
    done = await privacy.get_request(request["id"], {"X-Privacy-Request-Token": token})
    assert done["status"] == "completed", done
    return done, token


async def test_a_request_without_account_refuses_a_phone_number(privacy: Privacy) -> None:
    response = await privacy.client.post(
        "/v1/privacy/requests",
        json={"type": "access", "email": "attacker@example.nl", "phone": VICTIM_PHONE},
    )
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    [error] = response.json()["errors"]
    assert error["field"] == "phone"
    assert "e-mail address" in error["message"]
    assert "privacy officer" in error["message"]
    async with privacy.app.state.database.session() as session:
        stored = await session.scalar(select(func.count()).select_from(PrivacyRequest))
    assert stored == 0
    assert privacy.inbox.to("attacker@example.nl") == []


async def test_an_unproven_phone_finds_nothing_for_the_export(privacy: Privacy) -> None:
    _, parcel = victims_data(privacy)
    own = privacy.downstreams.shipping.add_shipment(
        recipient_email="attacker@example.nl", recipient_phone=None, recipient_name="Aart"
    )
    done, token = await request_with_an_unproven_phone(
        privacy, "attacker@example.nl", type="access"
    )
    download = await privacy.client.get(
        f"/v1/privacy/requests/{done['id']}/export", headers={"X-Privacy-Request-Token": token}
    )
    assert download.status_code == 200
    files = zip_members(download.content)
    # The requester's own request, as typed, is theirs; nothing the services hold of the other.
    services = b"".join(v for k, v in files.items() if k.startswith(("identity/", "shipping/")))
    for victims in (b"NL20INGB0001234567", b"victim", b"Vera Slachtoffer", VICTIM_PHONE.encode()):
        assert victims not in services
    parcels = orjson.loads(files["shipping/shipments.json"])
    assert [p["id"] for p in parcels] == [own.record["id"]]
    assert parcel.record["recipient_name"] == "Vera Slachtoffer"


async def test_an_unproven_phone_erases_nothing_of_its_holder(privacy: Privacy) -> None:
    account, parcel = victims_data(privacy)
    done, _ = await request_with_an_unproven_phone(privacy, "attacker@example.nl", type="erasure")
    others = [task for task in done["tasks"] if task["service"] in {"identity", "shipping"}]
    assert [task["result"]["erased"] for task in others] == [{}, {}]
    assert parcel.record["recipient_name"] == "Vera Slachtoffer"
    assert parcel.record["recipient_phone"] == VICTIM_PHONE
    [victim] = [r for r in privacy.downstreams.identity.rows if r.table == "accounts"]
    assert victim.account_id == account
    assert victim.record["iban"] == "NL20INGB0001234567"


async def test_an_unproven_phone_rectifies_nothing_of_its_holder(privacy: Privacy) -> None:
    account, parcel = victims_data(privacy)
    done, _ = await request_with_an_unproven_phone(
        privacy,
        "attacker@example.nl",
        type="rectification",
        changes={
            "identity": {"street": "Omleidingsweg"},
            "shipping": {"recipient_street": "Omleidingsweg"},
        },
    )
    assert all(task["result"]["rectified"] == {} for task in done["tasks"])
    assert parcel.record["recipient_street"] == "Kerkstraat"
    victim = privacy.downstreams.identity.rows_about(account_id=account)[0]
    assert victim.record["street"] == "Griede"


async def test_an_account_holders_unconfirmed_email_finds_no_one_elses_parcels(
    privacy: Privacy,
) -> None:
    identity, shipping = privacy.downstreams.identity, privacy.downstreams.shipping
    # The holder typed another person's address into their account and never confirmed it.
    account = identity.add_account(email="victim@example.nl", email_verified=False)
    own = shipping.add_shipment(sender=account, recipient_email="klant@example.nl")
    parcel = shipping.add_shipment(recipient_email="victim@example.nl", recipient_name="Vera")

    access = await privacy.request_as_account(account, type="access")
    assert access["email"] is None
    await privacy.drain()
    download = await privacy.client.get(
        f"/v1/privacy/requests/{access['id']}/export", headers=privacy.user(account)
    )
    assert download.status_code == 200
    parcels = orjson.loads(zip_members(download.content)["shipping/shipments.json"])
    assert [p["id"] for p in parcels] == [own.record["id"]]

    rectification = await privacy.request_as_account(
        account, type="rectification", changes={"shipping": {"recipient_street": "Omleidingsweg"}}
    )
    erasure = await privacy.request_as_account(account, type="erasure")
    await privacy.drain()
    for created in (rectification, erasure):
        assert (await privacy.get_request(created["id"]))["status"] == "completed"
    assert parcel.record["recipient_name"] == "Vera"
    assert parcel.record["recipient_street"] == "Kerkstraat"
    assert own.record["recipient_name"] is None
    # Nothing about the request is mailed to an address nobody confirmed.
    assert privacy.inbox.to("victim@example.nl") == []


async def test_an_account_holders_confirmed_email_finds_parcels_addressed_to_them(
    privacy: Privacy,
) -> None:
    identity, shipping = privacy.downstreams.identity, privacy.downstreams.shipping
    account = identity.add_account(email="shop@example.nl")
    parcel = shipping.add_shipment(recipient_email="shop@example.nl", recipient_phone=None)
    created = await privacy.request_as_account(account, type="access")
    assert created["email"] == "shop@example.nl"
    await privacy.drain()
    download = await privacy.client.get(
        f"/v1/privacy/requests/{created['id']}/export", headers=privacy.user(account)
    )
    parcels = orjson.loads(zip_members(download.content)["shipping/shipments.json"])
    assert [p["id"] for p in parcels] == [parcel.record["id"]]


async def test_a_phone_checked_by_the_privacy_officer_is_used(privacy: Privacy) -> None:
    parcel = privacy.downstreams.shipping.add_shipment(
        recipient_email="elders@example.nl", recipient_phone=VICTIM_PHONE, recipient_name="Vera"
    )
    response = await privacy.client.post(
        "/v1/privacy/requests",
        json={
            "type": "erasure",
            "email": "vera@example.nl",
            "phone": VICTIM_PHONE,
            "verification_note": "passport seen at the desk; SMS code to the number confirmed",
        },
        headers=privacy.officer(),
    )
    assert response.status_code == 201, response.text
    await privacy.drain()
    assert (await privacy.get_request(response.json()["id"]))["status"] == "completed"
    assert parcel.record["recipient_name"] is None
