"""When shipping switches a failing webhook endpoint off, the account holder is told: a notice is
queued in the switch-off's transaction and handed to identity, which mails it (decision 0206)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from structlog.testing import capture_logs

from libs.common.auth import ServiceScope
from services.shipping_api.models import AccountNotice, WebhookEndpoint
from services.shipping_api.notifications import account_notices
from services.shipping_api.notifications.account_notices import (
    AccountNoticeDispatcher,
    queue_endpoint_switched_off,
)
from services.shipping_api.settings import ShippingSettings
from services.shipping_api.webhooks import delivery
from services.shipping_api.workers import drain_outboxes
from tests.deploy.test_metrics import value
from tests.deploy.test_service_gauges import scrape
from tests.shipping.conftest import Shipping, delete_account_rows, settings_for, start_shipping
from tests.shipping.test_webhooks import as_json, deliver, deliveries, register
from tests.support.db import on_postgres
from tests.support.shipping_identity import SERVICE_TOKEN
from tests.support.shipping_receiver import Receiver
from tests.support.tokens import TokenIssuer

NOTICES = "/internal/v1/accounts/{}/notices"


async def notices(shipping: Shipping) -> list[AccountNotice]:
    async with shipping.session() as session:
        return list((await session.scalars(select(AccountNotice))).all())


async def send(shipping: Shipping) -> int:
    tried: int = await shipping.app.state.account_notices.run_once(shipping.clock.now())
    return tried


async def failing_for_six_days(shipping: Shipping, receiver: Receiver) -> dict[str, Any]:
    """An endpoint that has been failing for six days: its next failure switches it off."""
    endpoint = await register(shipping, receiver.url, events=["shipment.created"])
    async with shipping.session() as session:
        await session.execute(
            update(WebhookEndpoint)
            .where(WebhookEndpoint.id == uuid.UUID(endpoint["id"]))
            .values(failing_since=shipping.clock.now() - timedelta(days=6))
        )
        await session.commit()
    receiver.answer(*([503] * 10))
    return endpoint


async def switch_off(shipping: Shipping, receiver: Receiver) -> dict[str, Any]:
    """Switch an endpoint off by a failed delivery; returns the endpoint as the API shows it."""
    endpoint = await failing_for_six_days(shipping, receiver)
    await shipping.create()
    assert await deliver(shipping) == 1
    response = await shipping.client.get(
        f"/v1/webhook-endpoints/{endpoint['id']}", headers=shipping.headers
    )
    stored: dict[str, Any] = response.json()
    assert (stored["is_active"], stored["disabled_reason"]) == (False, "failing")
    return stored


async def switched_off_endpoint(shipping: Shipping, account_id: uuid.UUID, url: str) -> uuid.UUID:
    """An endpoint of ``account_id`` switched off after failing, as the dispatcher left it."""
    endpoint_id = uuid.uuid4()
    now = shipping.clock.now()
    async with shipping.session() as session:
        session.add(
            WebhookEndpoint(
                id=endpoint_id,
                account_id=account_id,
                url=url,
                events=["shipment.created"],
                secret_hint="whsec_…abcd",
                is_active=False,
                failing_since=now - timedelta(days=5, hours=1),
                disabled_reason="failing",
                disabled_at=now,
                created_at=now - timedelta(days=30),
                updated_at=now,
            )
        )
        await session.commit()
    return endpoint_id


async def queued_notice(shipping: Shipping) -> AccountNotice:
    """One notice of the shipping account, queued as a switch-off queues it."""
    await queued_notice_of(shipping, shipping.account_id, "https://shop.example.nl/hooks")
    [notice] = await notices(shipping)
    return notice


async def queued_notice_of(shipping: Shipping, account_id: uuid.UUID, url: str) -> None:
    endpoint_id = await switched_off_endpoint(shipping, account_id, url)
    async with shipping.session() as session:
        await queue_endpoint_switched_off(
            session,
            account_id=account_id,
            endpoint_id=endpoint_id,
            url=url,
            failing_since=shipping.clock.now() - timedelta(days=5, hours=1),
            disabled_at=shipping.clock.now(),
        )
        await session.commit()


def as_sent(endpoint: dict[str, Any]) -> dict[str, Any]:
    """The notice's ``webhook_endpoint``: the endpoint as the API shows it (times in ISO
    8601 with an offset)."""

    def iso(value: str | None) -> str | None:
        return value.replace("Z", "+00:00") if value else None

    return {
        "id": endpoint["id"],
        "url": endpoint["url"],
        "failing_since": iso(endpoint["failing_since"]),
        "disabled_at": iso(endpoint["disabled_at"]),
    }


def logged(logs: list[dict[str, Any]], event: str) -> list[dict[str, Any]]:
    return [entry for entry in logs if entry["event"] == event]


async def test_a_switch_off_queues_one_notice_of_the_endpoint(
    shipping: Shipping, receiver: Receiver
) -> None:
    with capture_logs() as logs:
        endpoint = await switch_off(shipping, receiver)
    [notice] = await notices(shipping)
    assert notice.account_id == shipping.account_id
    assert notice.kind == "webhook_endpoint_switched_off"
    assert notice.payload == as_sent(endpoint)
    assert endpoint["disabled_at"] == as_json(shipping.clock.now())
    assert endpoint["failing_since"] == as_json(shipping.clock.now() - timedelta(days=6))
    assert notice.attempts == 0
    assert notice.next_attempt_at == shipping.clock.now()
    assert notice.give_up_at == shipping.clock.now() + timedelta(days=3)
    # The operator's log line stays.
    [line] = logged(logs, "webhook_endpoint_switched_off")
    assert line["endpoint_id"] == endpoint["id"]

    # What fails after the switch-off queues no second notice.
    await shipping.create()
    assert await deliver(shipping) == 0
    assert len(await notices(shipping)) == 1


async def test_a_switch_off_that_is_rolled_back_queues_no_notice(
    shipping: Shipping, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    endpoint = await failing_for_six_days(shipping, receiver)
    await shipping.create()
    queue = delivery.queue_endpoint_switched_off

    async def queue_then_fail(session: AsyncSession, **notice: Any) -> uuid.UUID:
        await queue(session, **notice)
        raise RuntimeError("the transaction breaks after the notice")

    monkeypatch.setattr(delivery, "queue_endpoint_switched_off", queue_then_fail)
    with pytest.raises(RuntimeError):
        await deliver(shipping)
    assert await notices(shipping) == []
    response = await shipping.client.get(
        f"/v1/webhook-endpoints/{endpoint['id']}", headers=shipping.headers
    )
    assert response.json()["is_active"] is True


async def test_identity_gets_the_notice_with_the_service_token_and_it_is_deleted(
    shipping: Shipping, receiver: Receiver
) -> None:
    endpoint = await switch_off(shipping, receiver)
    [notice] = await notices(shipping)
    with capture_logs() as logs:
        assert await send(shipping) == 1
    [(authorization, body)] = shipping.identity.notice_calls
    assert authorization == f"Bearer {SERVICE_TOKEN}"
    assert body == {
        "id": str(notice.id),
        "kind": "webhook_endpoint_switched_off",
        "webhook_endpoint": as_sent(endpoint),
    }
    assert body["webhook_endpoint"]["url"] == receiver.url
    assert str(notice.id) in shipping.identity.notices
    assert await notices(shipping) == []
    [line] = logged(logs, "account_notice_delivered")
    assert line["account_id"] == str(shipping.account_id)
    assert await send(shipping) == 0
    assert len(shipping.identity.notice_calls) == 1


@pytest.mark.parametrize("trouble", ["500", "down"])
async def test_a_notice_identity_cannot_take_waits_with_backoff(
    shipping: Shipping, trouble: str
) -> None:
    notice = await queued_notice(shipping)
    if trouble == "down":
        shipping.identity.down = True
    else:
        shipping.identity.notice_answers.extend([500, 500])
    with capture_logs() as logs:
        assert await send(shipping) == 1
    [kept] = await notices(shipping)
    assert kept.id == notice.id
    assert kept.attempts == 1
    assert kept.next_attempt_at == shipping.clock.now() + timedelta(seconds=30)
    assert kept.last_error
    [line] = logged(logs, "account_notice_failed")
    assert line["log_level"] == "warning"

    # Not due before then; the next failure doubles the wait.
    assert await send(shipping) == 0
    shipping.clock.advance(timedelta(seconds=30))
    assert await send(shipping) == 1
    [kept] = await notices(shipping)
    assert kept.attempts == 2
    assert kept.next_attempt_at == shipping.clock.now() + timedelta(minutes=1)

    # Identity back: the same notice (the same id) is taken and the row goes.
    shipping.identity.down = False
    shipping.identity.notice_answers.clear()
    shipping.clock.advance(timedelta(minutes=1))
    assert await send(shipping) == 1
    assert list(shipping.identity.notices) == [str(notice.id)]
    assert await notices(shipping) == []


def test_the_backoff_doubles_from_30_seconds_up_to_an_hour() -> None:
    now = datetime(2026, 12, 10, tzinfo=UTC)
    gaps = [account_notices.next_notice_attempt(now, n) - now for n in range(1, 10)]
    assert gaps[:4] == [timedelta(seconds=s) for s in (30, 60, 120, 240)]
    assert gaps[-1] == timedelta(hours=1)
    assert max(gaps) == timedelta(hours=1)


async def test_a_stale_service_token_is_fetched_again_once(shipping: Shipping) -> None:
    await queued_notice(shipping)
    # Shipping's cached token predates a rotation at identity.
    await shipping.app.state.service_tokens.token()
    shipping.identity.rotate_token()
    assert await send(shipping) == 1
    assert [auth for auth, _ in shipping.identity.notice_calls] == [
        f"Bearer {SERVICE_TOKEN}",
        f"Bearer {shipping.identity.token}",
    ]
    assert shipping.identity.token_calls == 2
    assert len(shipping.identity.notices) == 1
    assert await notices(shipping) == []


@pytest.mark.parametrize("since", ["switched on", "deleted"])
async def test_a_notice_no_longer_true_when_it_goes_out_is_dropped(
    shipping: Shipping, since: str
) -> None:
    """The account holder switched the endpoint on again (or deleted it) first: a mail telling
    them to switch it on would be wrong by then."""
    notice = await queued_notice(shipping)
    endpoint_path = f"/v1/webhook-endpoints/{notice.payload['id']}"
    if since == "switched on":
        changed = await shipping.client.patch(
            endpoint_path, json={"is_active": True}, headers=shipping.headers
        )
        assert changed.status_code == 200, changed.text
    else:
        deleted = await shipping.client.delete(endpoint_path, headers=shipping.headers)
        assert deleted.status_code == 204, deleted.text
    with capture_logs() as logs:
        assert await send(shipping) == 1
    assert await notices(shipping) == []
    assert shipping.identity.notice_calls == []
    [line] = logged(logs, "account_notice_dropped")
    assert (line["notice_id"], line["reason"]) == (str(notice.id), "no longer true")


async def test_a_notice_of_an_account_identity_no_longer_has_is_dropped(
    shipping: Shipping,
) -> None:
    notice = await queued_notice(shipping)
    del shipping.identity.accounts[shipping.account_id]
    with capture_logs() as logs:
        assert await send(shipping) == 1
    assert await notices(shipping) == []
    [line] = logged(logs, "account_notice_dropped")
    assert line["notice_id"] == str(notice.id)
    assert line["account_id"] == str(shipping.account_id)


@pytest.mark.parametrize("refusal", ["409", "422", "403", "404"])
async def test_a_refused_notice_is_a_defect_kept_and_logged_as_an_error(
    shipping: Shipping, refusal: str
) -> None:
    """A 404 that is not identity's ``account-not-found`` (an identity that does not serve the
    route yet) keeps the notice: only an account identity does not have drops it."""
    await queued_notice(shipping)
    if refusal == "403":
        shipping.identity.scopes = shipping.identity.scopes - {ServiceScope.ACCOUNTS_NOTIFY}
    else:
        shipping.identity.notice_answers.append(int(refusal))
    with capture_logs() as logs:
        assert await send(shipping) == 1
    [kept] = await notices(shipping)
    assert kept.attempts == 1
    assert kept.last_error == f"identity answered {refusal}"
    assert kept.next_attempt_at == shipping.clock.now() + timedelta(seconds=30)
    [line] = logged(logs, "account_notice_failed")
    assert (line["log_level"], line["status_code"]) == ("error", int(refusal))
    assert shipping.identity.notices == {}


async def test_a_notice_identity_does_not_take_by_its_window_is_given_up(
    shipping: Shipping,
) -> None:
    notice = await queued_notice(shipping)
    shipping.identity.notice_answers.append(503)
    shipping.clock.set(notice.give_up_at + timedelta(minutes=5))
    with capture_logs() as logs:
        assert await send(shipping) == 1
    assert await notices(shipping) == []
    [line] = logged(logs, "account_notice_given_up")
    assert line["log_level"] == "error"
    assert line["notice_id"] == str(notice.id)


async def test_the_last_attempt_is_made_when_the_window_closes(shipping: Shipping) -> None:
    notice = await queued_notice(shipping)
    async with shipping.session() as session:
        await session.execute(
            update(AccountNotice).where(AccountNotice.id == notice.id).values(attempts=9)
        )
        await session.commit()
    shipping.identity.notice_answers.extend([503, 503])
    shipping.clock.set(notice.give_up_at - timedelta(minutes=30))
    assert await send(shipping) == 1
    [kept] = await notices(shipping)
    # An hour's wait would overshoot the window: the last attempt is at its end.
    assert kept.next_attempt_at == notice.give_up_at
    shipping.clock.set(kept.next_attempt_at)
    with capture_logs() as logs:
        assert await send(shipping) == 1
    assert await notices(shipping) == []
    [line] = logged(logs, "account_notice_given_up")
    assert line["attempts"] == 11


async def erase_or_export(shipping: Shipping, action: str) -> Any:
    response = await shipping.client.post(
        f"/internal/v1/subjects/{action}",
        json={"subject": {"account_id": str(shipping.account_id)}, "request_id": f"{action}-1"},
        headers=shipping.service(),
    )
    assert response.status_code == 200, response.text
    return response


async def test_the_accounts_export_lists_its_pending_notice(shipping: Shipping) -> None:
    notice = await queued_notice(shipping)
    other_account, _ = shipping.other_account()
    await queued_notice_of(shipping, other_account, "https://other.example.nl/hooks")
    response = await erase_or_export(shipping, "export")
    [record] = [
        line
        for line in (orjson.loads(raw) for raw in response.content.splitlines())
        if line.get("table") == "account_notices" and "record" in line
    ]
    assert record["category"] == "webhooks"
    assert record["record"]["id"] == str(notice.id)
    assert record["record"]["account_id"] == str(shipping.account_id)
    assert record["record"]["kind"] == "webhook_endpoint_switched_off"
    assert record["record"]["payload"]["url"] == "https://shop.example.nl/hooks"


async def test_erasing_the_account_deletes_its_pending_notices(shipping: Shipping) -> None:
    await queued_notice(shipping)
    other_account, _ = shipping.other_account()
    await queued_notice_of(shipping, other_account, "https://other.example.nl/hooks")
    answer = (await erase_or_export(shipping, "erase")).json()
    assert answer["erased"]["account_notices"] == 1
    assert [n.account_id for n in await notices(shipping)] == [other_account]
    assert await send(shipping) == 1
    assert [body["webhook_endpoint"]["url"] for _, body in shipping.identity.notice_calls] == [
        "https://other.example.nl/hooks"
    ]


async def test_the_outbox_gauges_count_waiting_notices(shipping: Shipping) -> None:
    notice = await queued_notice(shipping)
    async with shipping.session() as session:
        await session.execute(
            update(AccountNotice)
            .where(AccountNotice.id == notice.id)
            .values(next_attempt_at=datetime.now(UTC) - timedelta(minutes=10))
        )
        await session.commit()
    samples = await scrape(shipping.app, shipping.client)
    assert value(samples, "outbox_backlog", outbox="account_notices") == 1
    waited = value(samples, "outbox_oldest_due_seconds", outbox="account_notices")
    assert 595 <= waited <= 720
    assert not [v for v in samples["database_gauge_errors_total"] if v[1]]


async def test_draining_the_outboxes_sends_the_notice_of_a_switch_off(
    shipping: Shipping, receiver: Receiver
) -> None:
    """What the in-process worker and ``deliver-outbox`` run: webhooks, then the notice of
    the switch-off they caused, in one drain."""
    await failing_for_six_days(shipping, receiver)
    await shipping.create()
    state = shipping.app.state
    tried = await drain_outboxes(
        shipping.clock, state.webhook_dispatcher, state.recipient_mail, state.account_notices
    )
    assert tried >= 2
    assert [d.state for d in await deliveries(shipping)] == ["failed"]
    assert [body["kind"] for body in shipping.identity.notices.values()] == [
        "webhook_endpoint_switched_off"
    ]
    assert await notices(shipping) == []


async def test_the_background_worker_sends_notices_without_help(
    shipping_settings: ShippingSettings, issuer: TokenIssuer
) -> None:
    settings = settings_for(shipping_settings, outbox_worker_enabled=True, outbox_poll_seconds=0.05)
    async with start_shipping(settings, issuer, committed=True) as shipping:
        try:
            notice = await queued_notice(shipping)
            for _ in range(200):
                if str(notice.id) in shipping.identity.notices:
                    break
                await asyncio.sleep(0.02)
            assert str(notice.id) in shipping.identity.notices
        finally:
            await delete_notices(shipping)


async def delete_notices(shipping: Shipping) -> None:
    async with shipping.session() as session:
        await session.execute(
            delete(AccountNotice).where(AccountNotice.account_id == shipping.account_id)
        )
        await session.commit()
    await delete_account_rows(shipping.database, shipping.account_id)


@pytest.fixture
async def committed_shipping(
    shipping_settings: ShippingSettings, issuer: TokenIssuer
) -> AsyncIterator[Shipping]:
    async with start_shipping(settings_for(shipping_settings), issuer, committed=True) as shipping:
        try:
            yield shipping
        finally:
            await delete_notices(shipping)


@pytest.mark.skipif(not on_postgres(), reason="row locks are PostgreSQL's")
async def test_two_dispatchers_at_once_send_a_notice_once(committed_shipping: Shipping) -> None:
    shipping = committed_shipping
    for _ in range(5):
        await queued_notice_of(shipping, shipping.account_id, "https://shop.example.nl/hooks")
    state = shipping.app.state
    dispatchers = [
        AccountNoticeDispatcher(
            state.database.sessionmaker, state.identity, state.service_tokens, batch_size=2
        )
        for _ in range(2)
    ]
    now = shipping.clock.now()
    for _ in range(5):
        await asyncio.gather(*(dispatcher.run_once(now) for dispatcher in dispatchers))
    ids = [body["id"] for _, body in shipping.identity.notice_calls]
    assert len(ids) == 5
    assert sorted(ids) == sorted(set(ids))
    assert await notices(shipping) == []
