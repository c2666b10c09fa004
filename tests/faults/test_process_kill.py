"""A service killed with SIGKILL (no shutdown of any kind) and started again while webhook
deliveries and privacy requests are pending: all of them complete, and none is carried out twice.

What is durable is in the database (the webhook outbox, the privacy tasks under their leases);
what was in flight at the kill is found again once its lease lapses. Calls to another service
carry the privacy request's id, so a call whose answer was lost is repeated without effect; a
webhook POST whose answer was lost is sent again with the same ``Parcelpro-Delivery`` id, by
which the receiver recognises it (a crash between a receiver's 2xx and our record of it cannot be
told apart from a lost request: webhooks are at-least-once, and the id is what makes them
idempotent).
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update

from services.identity_api.models import Account
from services.privacy_api.models import MailOutbox, PrivacyTask
from services.shipping_api.models import Shipment, SubjectRequestAnswer, WebhookDelivery
from tests.faults.webhook_receiver import HoldingReceiver, holding_receiver
from tests.support.platform import (
    FAST_PASSWORD_HASHING,
    AccountHolder,
    execute,
    new_shipment,
    query,
    sign_up,
    subscribe_webhooks,
)
from tests.support.stack import Stack, running_stack

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    env = {
        **FAST_PASSWORD_HASHING,
        "SHIPPING_WEBHOOK_ALLOW_LOOPBACK": "true",
        # Two deliveries per round, so a kill catches two in flight and the rest still queued.
        "SHIPPING_OUTBOX_BATCH_SIZE": "2",
        "SHIPPING_OUTBOX_POLL_SECONDS": "0.2",
        # Long enough that a held POST is still in flight when the kill comes.
        "SHIPPING_WEBHOOK_TIMEOUT_SECONDS": "30",
        # A killed worker's task is taken over after 5 s; a service that is down is retried soon.
        "PRIVACY_TASK_LEASE_SECONDS": "5",
        "PRIVACY_TASK_BACKOFF_INITIAL_SECONDS": "0.3",
        "PRIVACY_TASK_BACKOFF_MAX_SECONDS": "1",
        "PRIVACY_WORKER_POLL_SECONDS": "0.2",
        "PRIVACY_HTTP_TIMEOUT_SECONDS": "30",
    }
    base = tmp_path_factory.mktemp("process-kill")
    with running_stack(base, suffix="faults_kill", extra_env=env) as stack:
        yield stack


@pytest.fixture
def receiver() -> Iterator[HoldingReceiver]:
    with holding_receiver() as running:
        yield running


def kill(stack: Stack, service: str) -> None:
    """SIGKILL: no graceful shutdown, no flushing, nothing."""
    stack.stop(service, kill=True)


def restart(stack: Stack, service: str) -> None:
    stack.start(service)
    stack.wait_ready((service,))


async def eventually(
    check: Callable[[], Awaitable[Any]], what: str, *, within: float = 30.0
) -> Any:
    deadline = time.monotonic() + within
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {within}s: {what}")
        await asyncio.sleep(0.1)


async def deliveries_of(stack: Stack, account_id: uuid.UUID) -> dict[str, Any]:
    rows = await query(
        stack,
        "shipping",
        select(
            WebhookDelivery.id,
            WebhookDelivery.state,
            WebhookDelivery.attempts,
            WebhookDelivery.next_attempt_at,
        ).where(WebhookDelivery.account_id == account_id),
    )
    return {str(row.id): row for row in rows}


async def test_webhook_deliveries_pending_at_a_kill_are_all_made_and_only_in_flight_ones_repeat(
    platform: Stack, receiver: HoldingReceiver
) -> None:
    async with httpx.AsyncClient(base_url=platform.gateway_url, timeout=30) as client:
        holder = await sign_up(client)
        await subscribe_webhooks(client, holder, receiver.url, ("shipment.created",))
        receiver.hold()
        # In one transaction, so the worker finds all six deliveries due at once.
        created = await client.post(
            "/v1/shipments/bulk",
            json={"shipments": [new_shipment(f"KILL-{number}") for number in range(6)]},
            headers=holder.headers,
        )
        assert created.status_code == 200, created.text
        assert [item["status"] for item in created.json()["results"]] == [201] * 6

        # The worker has two POSTs out (unanswered); the other four wait in the outbox.
        await receiver.wait_for("two deliveries in flight", lambda: receiver.in_flight == 2)
        await asyncio.sleep(0.5)
        assert len(receiver.deliveries) == 2
        in_flight = set(receiver.counts())
        kill(platform, "shipping")
        receiver.release()

    account_id = uuid.UUID(holder.account_id)
    restart(platform, "shipping")

    # Everything that was queued is delivered after the restart, once.
    queued = set(await deliveries_of(platform, account_id)) - in_flight
    assert len(queued) == 4
    await receiver.wait_for("queued deliveries made", lambda: queued <= set(receiver.counts()))

    async def queued_recorded() -> bool:
        rows = await deliveries_of(platform, account_id)
        return all(rows[d].state == "delivered" and rows[d].attempts == 1 for d in queued)

    await eventually(queued_recorded, "queued deliveries recorded as delivered")

    # What was in flight is neither lost nor re-sent at once: it waits for its lease to lapse
    # (no outcome was recorded), then goes out again under the same delivery id.
    rows = await deliveries_of(platform, account_id)
    now = datetime.now(UTC)
    for delivery_id in in_flight:
        assert rows[delivery_id].state == "pending"
        assert rows[delivery_id].attempts == 0
        assert rows[delivery_id].next_attempt_at > now
    # Instead of waiting the lease out (its length follows the 30 s delivery timeout), move
    # the rows' next attempt to now.
    await execute(
        platform,
        "shipping",
        update(WebhookDelivery)
        .where(WebhookDelivery.id.in_([uuid.UUID(d) for d in in_flight]))
        .values(next_attempt_at=now - timedelta(seconds=1)),
    )

    async def all_delivered() -> bool:
        rows = await deliveries_of(platform, account_id)
        return all(row.state == "delivered" for row in rows.values())

    await eventually(all_delivered, "every delivery made")
    counts = receiver.counts()
    assert {d: counts[d] for d in queued} == dict.fromkeys(queued, 1)
    assert {d: counts[d] for d in in_flight} == dict.fromkeys(in_flight, 2)
    for delivery_id in in_flight:
        first, second = receiver.bodies(delivery_id)
        assert first == second  # the same event, recognisable by its id
    rows = await deliveries_of(platform, account_id)
    assert {row.attempts for row in rows.values()} == {1}


async def privacy_request(
    client: httpx.AsyncClient, holder: AccountHolder, request_id: str
) -> dict[str, Any]:
    response = await client.get(f"/v1/privacy/requests/{request_id}", headers=holder.headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_privacy_requests_pending_at_kills_complete_and_no_service_applies_them_twice(
    platform: Stack,
) -> None:
    async with httpx.AsyncClient(base_url=platform.gateway_url, timeout=30) as client:
        erasing = await sign_up(client)
        restricting = await sign_up(client)
        # Requesters are told of their request at a confirmed address only (decision 0303).
        await execute(
            platform,
            "identity",
            update(Account)
            .where(Account.email.in_([erasing.email, restricting.email]))
            .values(email_verified_at=datetime.now(UTC)),
        )
        for holder in (erasing, restricting):
            for number in range(2):
                shipment = new_shipment(f"PRIV-{number}")
                created = await client.post("/v1/shipments", json=shipment, headers=holder.headers)
                assert created.status_code == 201, created.text

        # 1. Shipping stops answering (SIGSTOP) and an erasure is requested: privacy's worker
        #    calls shipping and waits for its answer...
        shipping = platform.processes["shipping"].popen
        os.kill(shipping.pid, signal.SIGSTOP)
        try:
            created = await client.post(
                "/v1/privacy/requests", json={"type": "erasure"}, headers=erasing.headers
            )
            assert created.status_code == 201, created.text
            erasure_id = created.json()["id"]

            async def calling_shipping() -> bool:
                rows = await query(
                    platform,
                    "privacy",
                    select(PrivacyTask.status).where(
                        PrivacyTask.request_id == uuid.UUID(erasure_id),
                        PrivacyTask.service == "shipping",
                    ),
                )
                return bool(rows) and rows[0].status == "running"

            await eventually(calling_shipping, "privacy's worker calling shipping")
            await asyncio.sleep(1.0)  # the call is written to shipping's socket

            # 2. ...when privacy is killed. Shipping then carries out the call it had received,
            #    and its answer goes nowhere.
            kill(platform, "privacy")
        finally:
            os.kill(shipping.pid, signal.SIGCONT)

        async def shipping_answered() -> list[Any]:
            return await query(
                platform,
                "shipping",
                select(SubjectRequestAnswer.answer).where(
                    SubjectRequestAnswer.request_id == erasure_id
                ),
            )

        [first_answer] = await eventually(shipping_answered, "shipping erasing on its own")

        # 3. Shipping is killed too, and privacy comes back: a restriction requested now finds
        #    shipping down, and its shipping task waits, retrying.
        kill(platform, "shipping")
        restart(platform, "privacy")
        created = await client.post(
            "/v1/privacy/requests", json={"type": "restriction"}, headers=restricting.headers
        )
        assert created.status_code == 201, created.text
        restriction_id = created.json()["id"]

        async def shipping_task_retrying() -> bool:
            request = await privacy_request(client, restricting, restriction_id)
            task = next(t for t in request["tasks"] if t["service"] == "shipping")
            return task["status"] == "pending" and task["attempts"] >= 1

        await eventually(shipping_task_retrying, "the restriction waiting for shipping")
        restart(platform, "shipping")

        # 4. Both requests complete.
        async def completed(holder: AccountHolder, request_id: str) -> dict[str, Any] | None:
            request = await privacy_request(client, holder, request_id)
            return request if request["status"] == "completed" else None

        erasure = await eventually(lambda: completed(erasing, erasure_id), "erasure completed")
        restriction = await eventually(
            lambda: completed(restricting, restriction_id), "restriction completed"
        )

    # The erasure's shipping task ran twice (the second worker took over the dead one's lease),
    # but shipping applied it once: the recorded result is the answer it gave the first time.
    shipping_task = next(t for t in erasure["tasks"] if t["service"] == "shipping")
    assert shipping_task["status"] == "succeeded"
    assert shipping_task["attempts"] >= 2
    answer = first_answer.answer
    assert shipping_task["result"] == answer
    assert answer["erased"]["shipments"] == 2
    assert all(t["status"] == "succeeded" for t in erasure["tasks"])
    rows = await query(
        platform,
        "shipping",
        select(func.count()).where(
            Shipment.account_id == uuid.UUID(erasing.account_id),
            Shipment.recipient_erased_at.is_(None),
        ),
    )
    assert rows == [(0,)]

    restriction_task = next(t for t in restriction["tasks"] if t["service"] == "shipping")
    assert restriction_task["attempts"] >= 2
    assert restriction_task["result"]["restricted"]["shipments"] == 2
    for request_id, action in ((erasure_id, "erase"), (restriction_id, "restrict")):
        rows = await query(
            platform,
            "shipping",
            select(SubjectRequestAnswer.action).where(
                SubjectRequestAnswer.request_id == request_id
            ),
        )
        assert [row.action for row in rows] == [action]

    # Each requester is told once that the request is done.
    async def mails_sent() -> list[Any]:
        rows = await query(
            platform,
            "privacy",
            select(MailOutbox.privacy_request_id, MailOutbox.sent_at).where(
                MailOutbox.privacy_request_id.in_(
                    [uuid.UUID(erasure_id), uuid.UUID(restriction_id)]
                )
            ),
        )
        return rows if len(rows) == 2 and all(row.sent_at for row in rows) else []

    mails = await eventually(mails_sent, "completion mails sent")
    assert len({row.privacy_request_id for row in mails}) == 2
