"""``POST /internal/v1/accounts/{id}/notices``: other services have identity mail an account
holder a notice (decision 0112), once per notice id."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any

import orjson
import pytest
from sqlalchemy import select

from services.identity_api.housekeeping import purge_expired
from services.identity_api.mail.messages import local_time
from services.identity_api.models import AccountNoticeRecord, OutboxMail
from tests.support.identity_app import Identity, bearer
from tests.support.smtp import Inbox

SUBJECT = "Webhook-endpoint uitgeschakeld / Webhook endpoint switched off — Parcel Pro"
URL = "https://shop.example.nl/parcelpro/webhook?shop=42"
# 09:00 and 09:03 UTC on these days are 10:00 CET (winter) and 11:03 CEST (summer).
FAILING_SINCE = "2026-11-20T09:00:00Z"
DISABLED_AT = "2026-07-25T09:03:00+00:00"


def notice(notice_id: uuid.UUID | None = None, **endpoint: Any) -> dict[str, Any]:
    return {
        "id": str(notice_id or uuid.uuid4()),
        "kind": "webhook_endpoint_switched_off",
        "webhook_endpoint": {
            "id": str(uuid.uuid4()),
            "url": URL,
            "failing_since": FAILING_SINCE,
            "disabled_at": DISABLED_AT,
            **endpoint,
        },
    }


async def shipping(identity: Identity) -> dict[str, str]:
    return bearer(await identity.service_token("shipping_api"))


async def send(
    identity: Identity, account_id: str, body: dict[str, Any], headers: dict[str, str]
) -> Any:
    return await identity.client.post(
        f"/internal/v1/accounts/{account_id}/notices", json=body, headers=headers
    )


async def notice_mails(identity: Identity, inbox: Inbox, address: str) -> list[EmailMessage]:
    await identity.deliver_mail()
    # Header unfolding may double a space; the words are what the reader sees.
    return [m for m in inbox.to(address) if str(m["Subject"]).split() == SUBJECT.split()]


async def test_notice_is_accepted_and_mailed_to_the_account_holder(
    identity: Identity, inbox: Inbox
) -> None:
    account = await identity.register()
    identity.clock.advance(timedelta(microseconds=123_456))
    body = notice()
    response = await send(identity, account["account_id"], body, await shipping(identity))
    assert response.status_code == 202, response.text
    assert response.json() == {
        "id": body["id"],
        "account_id": account["account_id"],
        "kind": "webhook_endpoint_switched_off",
        "accepted_at": identity.clock.now().isoformat().replace("+00:00", "Z"),
    }
    [mail] = await notice_mails(identity, inbox, account["email"])
    text = Inbox.body(mail)
    assert text.startswith(f"Beste {account['contact_person']},")
    assert text.index("Uitgeschakeld op:") < text.index("Switched off:")  # Dutch first
    assert URL in text
    endpoint = body["webhook_endpoint"]["id"]
    assert f'PATCH /v1/webhook-endpoints/{endpoint}  {{"is_active": true}}' in text
    assert f"POST /v1/webhook-endpoints/{endpoint}/deliveries/{{delivery_id}}/redeliver" in text
    # Amsterdam time, winter and summer.
    assert "Mislukt sinds: 2026-11-20 10:00 CET" in text
    assert "Uitgeschakeld op: 2026-07-25 11:03 CEST" in text
    assert "Failing since: 2026-11-20 10:00 CET" in text
    assert "Switched off: 2026-07-25 11:03 CEST" in text


async def test_without_failing_since_the_mail_leaves_it_out(
    identity: Identity, inbox: Inbox
) -> None:
    account = await identity.register()
    body = notice(failing_since=None)
    response = await send(identity, account["account_id"], body, await shipping(identity))
    assert response.status_code == 202
    [mail] = await notice_mails(identity, inbox, account["email"])
    text = Inbox.body(mail)
    assert "Mislukt sinds" not in text
    assert "Failing since" not in text
    assert "Switched off: 2026-07-25 11:03 CEST" in text


async def test_a_retry_answers_as_the_first_time_and_mails_once(
    identity: Identity, inbox: Inbox
) -> None:
    account = await identity.register()
    headers = await shipping(identity)
    body = notice()
    first = await send(identity, account["account_id"], body, headers)
    assert first.status_code == 202
    identity.clock.advance(timedelta(minutes=5))
    again = await send(identity, account["account_id"], body, headers)
    assert again.status_code == 202
    assert again.json() == first.json()
    assert len(await notice_mails(identity, inbox, account["email"])) == 1
    # A new notice id is a new notice.
    other = await send(identity, account["account_id"], notice(), headers)
    assert other.status_code == 202
    assert other.json()["accepted_at"] != first.json()["accepted_at"]
    assert len(await notice_mails(identity, inbox, account["email"])) == 2


async def test_the_same_notice_id_for_another_account_is_409(identity: Identity) -> None:
    first, second = await identity.register(), await identity.register()
    headers = await shipping(identity)
    body = notice()
    assert (await send(identity, first["account_id"], body, headers)).status_code == 202
    response = await send(identity, second["account_id"], body, headers)
    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 409
    async with identity.database.session() as session:
        mails = (
            await session.scalars(
                select(OutboxMail.account_id).where(OutboxMail.subject == SUBJECT)
            )
        ).all()
    assert mails == [uuid.UUID(first["account_id"])]


async def test_unknown_account_is_404(identity: Identity) -> None:
    response = await send(identity, str(uuid.uuid4()), notice(), await shipping(identity))
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    # The type shipping acts on (it drops the notice), unlike a 404 of a route not served.
    assert response.json()["type"] == "https://docs.parcelpro.nl/problems/account-not-found"


async def test_erased_account_is_404(identity: Identity) -> None:
    account = await identity.register()
    erased = await identity.client.post(
        "/internal/v1/subjects/erase",
        json={"subject": {"account_id": account["account_id"]}, "request_id": "pr-notice-404"},
        headers=bearer(await identity.service_token("privacy_api")),
    )
    assert erased.status_code == 200
    response = await send(identity, account["account_id"], notice(), await shipping(identity))
    assert response.status_code == 404
    assert response.json()["type"] == "https://docs.parcelpro.nl/problems/account-not-found"


async def test_a_service_token_without_accounts_notify_is_403(identity: Identity) -> None:
    account = await identity.register()
    # privacy_api's client has internal:accounts.read, not internal:accounts.notify.
    privacy = bearer(await identity.service_token("privacy_api"))
    response = await send(identity, account["account_id"], notice(), privacy)
    assert response.status_code == 403
    assert response.headers["content-type"] == "application/problem+json"


async def test_without_a_token_it_is_401(identity: Identity) -> None:
    account = await identity.register()
    response = await send(identity, account["account_id"], notice(), {})
    assert response.status_code == 401


async def test_an_account_holders_own_token_is_401(identity: Identity) -> None:
    # An account holder cannot mail themselves through identity: their token is not a service's.
    account, headers = await identity.user()
    response = await send(identity, account["account_id"], notice(), headers)
    assert response.status_code == 401


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"kind": "account_closed"}, "kind"),
        ({"id": "not-a-uuid"}, "id"),
        ({"account_id": str(uuid.uuid4())}, "account_id"),
        (
            {"webhook_endpoint": {"id": str(uuid.uuid4()), "url": URL}},
            "webhook_endpoint.disabled_at",
        ),
        (
            {
                "webhook_endpoint": {
                    "id": str(uuid.uuid4()),
                    "url": URL,
                    "disabled_at": "2026-07-25T09:03:00",
                }
            },
            "webhook_endpoint.disabled_at",
        ),
        (
            {
                "webhook_endpoint": {
                    "id": str(uuid.uuid4()),
                    "url": "https://x.nl/" + "a" * 2048,
                    "disabled_at": DISABLED_AT,
                }
            },
            "webhook_endpoint.url",
        ),
    ],
)
async def test_a_bad_body_is_422_naming_the_field(
    identity: Identity, change: dict[str, Any], field: str
) -> None:
    account = await identity.register()
    response = await send(
        identity, account["account_id"], {**notice(), **change}, await shipping(identity)
    )
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert [error["field"] for error in response.json()["errors"]] == [field]
    async with identity.database.session() as session:
        assert (await session.scalars(select(AccountNoticeRecord))).all() == []


async def test_erasure_deletes_the_accounts_notices(identity: Identity) -> None:
    account, kept = await identity.register(), await identity.register()
    headers = await shipping(identity)
    for owner in (account, account, kept):
        assert (await send(identity, owner["account_id"], notice(), headers)).status_code == 202
    response = await identity.client.post(
        "/internal/v1/subjects/erase",
        json={"subject": {"account_id": account["account_id"]}, "request_id": "pr-notices-1"},
        headers=bearer(await identity.service_token("privacy_api")),
    )
    assert response.status_code == 200
    assert response.json()["erased"]["account_notices"] == 2
    async with identity.database.session() as session:
        left = (await session.scalars(select(AccountNoticeRecord.account_id))).all()
    assert left == [uuid.UUID(kept["account_id"])]


async def test_export_lists_the_accounts_notices(identity: Identity) -> None:
    account, other = await identity.register(), await identity.register()
    headers = await shipping(identity)
    body = notice()
    accepted = (await send(identity, account["account_id"], body, headers)).json()
    assert (await send(identity, other["account_id"], notice(), headers)).status_code == 202
    response = await identity.client.post(
        "/internal/v1/subjects/export",
        json={"subject": {"account_id": account["account_id"]}, "request_id": "pr-notices-2"},
        headers=bearer(await identity.service_token("privacy_api")),
    )
    assert response.status_code == 200
    parsed = [orjson.loads(line) for line in response.content.splitlines() if line]
    records = [
        line for line in parsed if line.get("table") == "account_notices" and "record" in line
    ]
    assert [(line["category"], line["record"]) for line in records] == [
        (
            "account_notices",
            {
                "id": body["id"],
                "account_id": account["account_id"],
                "kind": "webhook_endpoint_switched_off",
                "accepted_at": datetime.fromisoformat(accepted["accepted_at"]).isoformat(),
            },
        )
    ]


async def test_housekeeping_deletes_notices_after_30_days_and_keeps_younger_ones(
    identity: Identity,
) -> None:
    account = await identity.register()
    headers = await shipping(identity)
    old = notice()
    assert (await send(identity, account["account_id"], old, headers)).status_code == 202
    identity.clock.advance(timedelta(days=20))
    young = notice()
    assert (await send(identity, account["account_id"], young, headers)).status_code == 202
    async with identity.database.session() as session:
        early = await purge_expired(session, identity.clock.now())
        deleted = await purge_expired(session, identity.clock.now() + timedelta(days=11))
        await session.commit()
        left = (await session.scalars(select(AccountNoticeRecord.id))).all()
    assert early["account_notices"] == 0
    assert deleted["account_notices"] == 1
    assert left == [uuid.UUID(young["id"])]


def test_times_in_the_mail_are_amsterdam_time() -> None:
    assert local_time(datetime(2026, 3, 29, 0, 59, tzinfo=UTC)) == "2026-03-29 01:59 CET"
    assert local_time(datetime(2026, 3, 29, 1, 0, tzinfo=UTC)) == "2026-03-29 03:00 CEST"
