"""The mail privacy sent about a subject's own requests is part of what privacy holds about
them (AVG art. 15): exported with their requests, kept on erasure as correspondence."""

from __future__ import annotations

import uuid
from typing import Any

import orjson
from sqlalchemy import select

from libs.common.auth import ServiceScope
from services.privacy_api.models import MailOutbox
from tests.privacy.test_disclosures import police_request
from tests.support.privacy_harness import Privacy
from tests.support.tokens import bearer

PIET = "piet@example.nl"


def service(privacy: Privacy) -> dict[str, str]:
    return bearer(privacy.issuer.service("identity_api", [ServiceScope.SUBJECTS]))


async def export(privacy: Privacy, subject: dict[str, str]) -> list[dict[str, Any]]:
    response = await privacy.client.post(
        "/internal/v1/subjects/export",
        json={"subject": subject, "request_id": str(uuid.uuid4())},
        headers=service(privacy),
    )
    assert response.status_code == 200
    parsed = [orjson.loads(line) for line in response.content.splitlines() if line]
    return [line for line in parsed if "record" in line]


async def disclosure_about_piet(privacy: Privacy) -> None:
    officer = privacy.officer()
    created = await privacy.client.post(
        "/v1/privacy/disclosures", json=police_request(), headers=officer
    )
    assert created.status_code == 201, created.text
    decided = await privacy.client.post(
        f"/v1/privacy/disclosures/{created.json()['id']}/decision",
        json={"decision": "approved", "reason": "Valid order under art. 126nd Sv."},
        headers=officer,
    )
    assert decided.status_code == 200
    await privacy.drain()


async def extend(privacy: Privacy, request_id: str, reason: str) -> None:
    extended = await privacy.client.post(
        f"/v1/privacy/requests/{request_id}/extend",
        json={"months": 1, "reason": reason},
        headers=privacy.officer(),
    )
    assert extended.status_code == 200, extended.text


async def test_export_holds_the_mail_about_the_subjects_own_requests_only(
    privacy: Privacy,
) -> None:
    await disclosure_about_piet(privacy)
    made, _ = await privacy.request_by_email(PIET, type="access")
    await extend(privacy, made["id"], "Your parcels of seven years are many.")
    other = privacy.downstreams.identity.add_account(email="shop@example.nl")
    theirs = await privacy.request_as_account(other, type="access")
    await extend(privacy, theirs["id"], "The shop's archive is large.")
    async with privacy.app.state.database.session() as session:
        queued = len((await session.scalars(select(MailOutbox.id))).all())
    assert queued == 3  # the officer's notice of the disclosure too

    records = await export(privacy, {"email": PIET})
    mails = [line for line in records if line["table"] == "mail_outbox"]
    assert [line["category"] for line in mails] == ["privacy_request"]
    mail = mails[0]["record"]
    assert mail["recipient"] == PIET
    assert mail["privacy_request_id"] == made["id"]
    assert "Your parcels of seven years are many." in mail["body"]
    assert "archive" not in orjson.dumps(records).decode()

    shop = await export(privacy, {"account_id": str(other)})
    assert [line["record"]["recipient"] for line in shop if line["table"] == "mail_outbox"] == [
        "shop@example.nl"
    ]


async def test_erasure_keeps_the_correspondence_and_says_so(privacy: Privacy) -> None:
    made, _ = await privacy.request_by_email(PIET, type="access")
    await extend(privacy, made["id"], "Your parcels of seven years are many.")
    erased = await privacy.client.post(
        "/internal/v1/subjects/erase",
        json={"subject": {"email": PIET}, "request_id": str(uuid.uuid4())},
        headers=service(privacy),
    )
    assert erased.status_code == 200
    kept = {(k["table"], k["field"]): k["reason"] for k in erased.json()["kept"]}
    assert {("mail_outbox", "recipient"), ("mail_outbox", "body")} <= set(kept)
    assert "Correspondence" in kept[("mail_outbox", "body")]
    async with privacy.app.state.database.session() as session:
        bodies = (await session.scalars(select(MailOutbox.body))).all()
    assert any("Your parcels of seven years are many." in body for body in bodies)
