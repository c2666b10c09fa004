"""Disclosures to authorities: recorded with the legal basis and the check of powers, decided by
the privacy officer, answered with an export limited to the requested categories."""

from __future__ import annotations

import orjson
from sqlalchemy import select

from libs.common.auth import Role
from services.privacy_api.models import AuditLog
from tests.support.privacy_harness import Privacy, zip_members
from tests.support.tokens import bearer


def police_request(**changes: object) -> dict[str, object]:
    return {
        "authority": "police",
        "authority_name": "Politie Eenheid Rotterdam",
        "authority_reference": "PL1700-2026-123456",
        "legal_basis": "Art. 126nd Sv, order of the officier van justitie",
        "requested_data": "Shipments to this address in 2026",
        "subject": {"email": "piet@example.nl"},
        "categories": ["recipient_contact"],
        "powers_verification": "Order signed by the OvJ; confirmed by phone with the parket.",
        **changes,
    }


async def test_approved_disclosure_yields_a_scoped_export_for_the_officer(
    privacy: Privacy,
) -> None:
    privacy.downstreams.shipping.add_shipment(recipient_email="piet@example.nl")
    officer = privacy.officer()
    created = await privacy.client.post(
        "/v1/privacy/disclosures", json=police_request(), headers=officer
    )
    assert created.status_code == 201, created.text
    disclosure = created.json()
    assert disclosure["decision"] == "pending"
    assert disclosure["powers_verified_by"]
    decided = await privacy.client.post(
        f"/v1/privacy/disclosures/{disclosure['id']}/decision",
        json={"decision": "approved", "reason": "Valid order under art. 126nd Sv."},
        headers=officer,
    )
    assert decided.status_code == 200
    assert decided.json()["export_status"] == "verified"
    await privacy.drain()
    download = await privacy.client.get(
        f"/v1/privacy/disclosures/{disclosure['id']}/export", headers=officer
    )
    assert download.status_code == 200
    files = zip_members(download.content)
    data_files = {name for name in files if not name.startswith("summary")}
    assert data_files == {"shipping/shipments.json", "shipping/shipments.csv"}
    (shipment,) = orjson.loads(files["shipping/shipments.json"])
    assert shipment["recipient_email"] == "piet@example.nl"
    assert "reference" not in shipment  # shipment_details were not asked for
    # The subject is not told of a disclosure to the police; the officer is.
    assert privacy.inbox.to("piet@example.nl") == []
    await privacy.inbox.wait_for("privacy@parcelpro.nl")
    async with privacy.app.state.database.session() as session:
        actions = (
            await session.scalars(
                select(AuditLog.action)
                .where(AuditLog.object_id == disclosure["id"])
                .order_by(AuditLog.id)
            )
        ).all()
    assert actions == [
        "disclosure.registered",
        "disclosure.approved",
        "disclosure.export_downloaded",
    ]


async def test_disclosure_export_is_not_visible_to_the_subject(privacy: Privacy) -> None:
    account = privacy.downstreams.identity.add_account(email="shop@example.nl")
    officer = privacy.officer()
    created = await privacy.client.post(
        "/v1/privacy/disclosures",
        json=police_request(subject={"account_id": str(account)}, categories=["contact"]),
        headers=officer,
    )
    decided = await privacy.client.post(
        f"/v1/privacy/disclosures/{created.json()['id']}/decision",
        json={"decision": "approved", "reason": "ok"},
        headers=officer,
    )
    request_id = decided.json()["export_request_id"]
    mine = await privacy.client.get("/v1/privacy/requests", headers=privacy.user(account))
    assert mine.json()["data"] == []
    seen = await privacy.client.get(
        f"/v1/privacy/requests/{request_id}", headers=privacy.user(account)
    )
    assert seen.status_code == 404


async def test_rejected_disclosure_has_no_export_and_cannot_be_decided_twice(
    privacy: Privacy,
) -> None:
    officer = privacy.officer()
    created = await privacy.client.post(
        "/v1/privacy/disclosures", json=police_request(), headers=officer
    )
    url = f"/v1/privacy/disclosures/{created.json()['id']}"
    rejected = await privacy.client.post(
        url + "/decision",
        json={"decision": "rejected", "reason": "No legal basis."},
        headers=officer,
    )
    assert rejected.json()["decision"] == "rejected"
    assert rejected.json()["export_request_id"] is None
    again = await privacy.client.post(
        url + "/decision", json={"decision": "approved", "reason": "changed mind"}, headers=officer
    )
    assert again.status_code == 409
    assert (await privacy.client.get(url + "/export", headers=officer)).status_code == 404


async def test_disclosures_are_for_the_privacy_officer_only(privacy: Privacy) -> None:
    account = privacy.downstreams.identity.add_account(email="shop@example.nl")
    for headers in (privacy.user(account), bearer(privacy.issuer.staff(Role.SUPPORT))):
        assert (
            await privacy.client.get("/v1/privacy/disclosures", headers=headers)
        ).status_code == 403
        made = await privacy.client.post(
            "/v1/privacy/disclosures", json=police_request(), headers=headers
        )
        assert made.status_code == 403
    assert (await privacy.client.get("/v1/privacy/disclosures")).status_code == 401
    admin = bearer(privacy.issuer.staff(Role.ADMIN))
    assert (await privacy.client.get("/v1/privacy/disclosures", headers=admin)).status_code == 200


async def test_disclosure_input_is_validated(privacy: Privacy) -> None:
    officer = privacy.officer()
    for body, field in (
        (police_request(authority="neighbour"), "authority"),
        (police_request(categories=[]), "categories"),
        (police_request(categories=["secrets"]), "categories.0"),
        (police_request(subject={}), "subject"),
        (police_request(powers_verification=""), "powers_verification"),
    ):
        response = await privacy.client.post("/v1/privacy/disclosures", json=body, headers=officer)
        assert response.status_code == 422, body
        assert field in [e["field"] for e in response.json()["errors"]], response.json()


async def test_the_location_of_a_registered_disclosure_answers_it(privacy: Privacy) -> None:
    officer = privacy.officer()
    created = await privacy.client.post(
        "/v1/privacy/disclosures", json=police_request(), headers=officer
    )
    assert created.status_code == 201, created.text
    assert created.headers["location"] == f"/v1/privacy/disclosures/{created.json()['id']}"
    read = await privacy.client.get(created.headers["location"], headers=officer)
    assert read.status_code == 200
    assert read.json() == created.json()
