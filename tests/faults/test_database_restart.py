"""PostgreSQL restarted, or crashed, while requests run through the gateway.

Every request is answered at once: as it would have been, or with a ``503`` problem document
that says to retry. Nothing is half-written: a shipment is stored with its parcels, its first
event and its webhook delivery, or not at all; a privacy request with its tasks, or not at all.
The services recover without being restarted: their connection pools, their background workers
(webhook outbox, privacy tasks) and the storage of the request log all carry on.

The database is a private server (``tests/support/postgres_cluster.py``); the machine's shared
server is never restarted.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import httpx
import pytest

from tests.faults.traffic import Answer, Traffic
from tests.support.metrics import scrape_direct_writes
from tests.support.platform import (
    FAST_PASSWORD_HASHING,
    create_api_key,
    query,
    sign_up,
    subscribe_webhooks,
)
from tests.support.postgres_cluster import PostgresCluster, ShutdownMode
from tests.support.shipping_receiver import Receiver, webhook_receiver
from tests.support.stack import SERVICES, Stack, running_stack

pytestmark = pytest.mark.e2e

OUTAGE_SECONDS = 2.0
# An answer to a request while the database is away must come at once, never after a hang.
PROMPT_SECONDS = 10.0
RECOVERY_SECONDS = 30.0


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    with webhook_receiver() as running:
        yield running


@pytest.fixture(scope="module")
def platform(
    private_postgres: PostgresCluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    env = {
        **{f"{service.upper()}_DATABASE_URL": private_postgres.url() for service in SERVICES},
        **FAST_PASSWORD_HASHING,
        "SHIPPING_WEBHOOK_ALLOW_LOOPBACK": "true",
        # One direct connection for three writers of creates and two readers: creates wait for
        # it and go together (0710), so the restart also breaks batches in flight.
        "SHIPPING_DB_DIRECT_POOL_SIZE": "1",
        "PRIVACY_REQUEST_CREATE_LIMIT": "1000/hour",
        "PRIVACY_TASK_BACKOFF_INITIAL_SECONDS": "0.5",
        "PRIVACY_TASK_BACKOFF_MAX_SECONDS": "2",
    }
    base = tmp_path_factory.mktemp("database-restart")
    with running_stack(base, suffix="faults_restart", extra_env=env) as stack:
        yield stack


async def _eventually(
    check: Callable[[], Awaitable[Any]], *, within: float = RECOVERY_SECONDS, pause: float = 0.2
) -> Any:
    """Poll ``check`` until it returns something truthy (or time is up: its last answer)."""
    deadline = time.monotonic() + within
    while True:
        result = await check()
        if result or time.monotonic() > deadline:
            return result
        await asyncio.sleep(pause)


def _assert_clean_answers(answers: list[Answer]) -> None:
    unanswered = [a for a in answers if a.status is None]
    assert not unanswered, f"requests without an HTTP answer: {unanswered[:3]}"
    unexpected = [a for a in answers if a.status not in {200, 201, 503}]
    assert not unexpected, f"unexpected answers: {unexpected[:3]}"
    slow = [a for a in answers if a.seconds > PROMPT_SECONDS]
    assert not slow, f"requests that hung: {slow[:3]}"
    for answer in (a for a in answers if a.status == 503):
        assert answer.content_type == "application/problem+json", answer
        assert answer.body["status"] == 503
        assert answer.body["request_id"] == answer.request_id
        assert "Traceback" not in str(answer.body)
        if "database" in answer.body["detail"]:
            assert answer.retry_after == "2", answer


async def _incomplete_shipments(stack: Stack, account_id: uuid.UUID) -> list[Any]:
    """Shipments missing a part written in the same transaction: parcels, the first event, the
    webhook delivery."""
    return await query(
        stack,
        "shipping",
        """
        SELECT s.reference FROM shipments s
        WHERE s.account_id = :account AND (
            s.parcel_count <> (SELECT count(*) FROM parcels p WHERE p.shipment_id = s.id)
            OR NOT EXISTS (SELECT 1 FROM shipment_events e WHERE e.shipment_id = s.id)
            OR NOT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.shipment_id = s.id)
        )
        """,
        {"account": account_id},
    )


async def _request_log_ids(stack: Stack, account_id: uuid.UUID) -> dict[str, set[str]]:
    stored: dict[str, set[str]] = {}
    for service in SERVICES:
        rows = await query(
            stack,
            service,
            "SELECT request_id FROM request_log WHERE account_id = :account",
            {"account": account_id},
        )
        stored[service] = {row.request_id for row in rows}
    return stored


def _logged_request_ids(stack: Stack, account_id: str) -> dict[str, set[str]]:
    """What each service printed to stdout as its request log for the account."""
    logged: dict[str, set[str]] = {service: set() for service in SERVICES}
    for line in stack.log_lines():
        if line.get("event") == "request" and line.get("account_id") == account_id:
            logged[str(line["service"])].add(str(line["request_id"]))
    return logged


@pytest.mark.parametrize("mode", ["fast", "immediate"])
async def test_requests_during_a_database_restart_succeed_or_fail_cleanly_and_nothing_is_lost(
    platform: Stack, private_postgres: PostgresCluster, receiver: Receiver, mode: ShutdownMode
) -> None:
    processes = {name: process.popen.pid for name, process in platform.processes.items()}
    recipient_name = f"Ontvanger {uuid.uuid4().hex[:8]}"
    async with httpx.AsyncClient(base_url=platform.gateway_url, timeout=30) as client:
        holder = await sign_up(client)
        account_id = uuid.UUID(holder.account_id)
        key = await create_api_key(client, holder)
        await subscribe_webhooks(client, holder, receiver.url, ("shipment.created",))
        traffic = Traffic(client, holder, key, tag=f"restart-{mode}", recipient_name=recipient_name)

        async with traffic.running():
            await asyncio.sleep(1.5)
            down_at = time.monotonic()
            await asyncio.to_thread(private_postgres.stop, mode)
            await asyncio.sleep(OUTAGE_SECONDS)
            await asyncio.to_thread(private_postgres.start)
            up_at = time.monotonic()
            await asyncio.sleep(3.0)

        answers = traffic.answers
        _assert_clean_answers(answers)
        during = [a for a in answers if down_at <= a.sent_at <= up_at]
        assert any(a.status == 503 and "database" in a.body["detail"] for a in during), (
            "the outage was never noticed"
        )
        for kind in ("create", "read", "privacy", "account"):
            assert any(a.kind == kind and a.status in {200, 201} for a in answers), kind

        # Recovered by themselves: the same processes answer again, all ready.
        assert {n: p.popen.pid for n, p in platform.processes.items()} == processes
        assert all(p.popen.poll() is None for p in platform.processes.values())
        for service in SERVICES:
            ready = await client.get(f"{platform.service_url(service)}/readyz")
            assert ready.status_code == 200, (service, ready.text)
        after = [
            await traffic.create_shipment(),
            await traffic.read_shipment(),
            await traffic.request_privacy(),
            await traffic.read_account(),
        ]
        assert [a.status for a in after] == [201, 200, 201, 200], after
        writes, round_trips = await scrape_direct_writes(
            client, f"{platform.service_url('shipping')}/metrics"
        )
        assert writes > round_trips, "no creates went together"

    # No acknowledged shipment is missing; the only extra ones are those whose commit went
    # through while its answer was lost to the restart (the client saw a 503 for them).
    rows = await query(
        platform,
        "shipping",
        "SELECT reference FROM shipments WHERE account_id = :account",
        {"account": account_id},
    )
    stored = {row.reference for row in rows}
    # A create whose answer was lost is never stored a second time by the route (0707).
    assert len(rows) == len(stored), "a create was stored twice"
    created = {a.reference for a in traffic.answers if a.kind == "create" and a.status == 201}
    refused = {a.reference for a in traffic.answers if a.kind == "create" and a.status == 503}
    assert created <= stored
    assert stored - created <= refused
    assert await _incomplete_shipments(platform, account_id) == []

    # Every privacy request was stored with its three tasks, and all of them complete: the
    # worker survived the outage.
    half_written = await query(
        platform,
        "privacy",
        """
        SELECT r.id FROM privacy_request r WHERE r.account_id = :account
        AND (SELECT count(*) FROM privacy_task t WHERE t.request_id = r.id) <> 3
        """,
        {"account": account_id},
    )
    assert half_written == []
    acknowledged = {
        uuid.UUID(a.body["id"]) for a in traffic.answers if a.kind == "privacy" and a.status == 201
    }

    async def privacy_requests_done() -> bool:
        rows = await query(
            platform,
            "privacy",
            "SELECT id, status FROM privacy_request WHERE account_id = :account",
            {"account": account_id},
        )
        statuses = {row.id: row.status for row in rows}
        return acknowledged <= set(statuses) and set(statuses.values()) == {"completed"}

    assert await _eventually(privacy_requests_done), "privacy requests did not complete"

    # Every webhook delivery is made, each exactly once: the outbox worker survived too, and an
    # attempt whose outcome could not be recorded during the outage is not repeated.
    async def deliveries_done() -> list[Any] | None:
        rows = await query(
            platform,
            "shipping",
            "SELECT id, state, attempts FROM webhook_deliveries WHERE account_id = :account",
            {"account": account_id},
        )
        return rows if rows and all(row.state == "delivered" for row in rows) else None

    deliveries = await _eventually(deliveries_done)
    assert deliveries, "webhook deliveries did not all go out"
    expected = {str(row.id) for row in deliveries}
    received = [r.headers.get("parcelpro-delivery") for r in receiver.received]
    mine = [delivery_id for delivery_id in received if delivery_id in expected]
    assert sorted(mine) == sorted(expected), "a delivery went out twice, or not at all"

    # The request log: every entry an account request printed is also stored, including the
    # ones queued while the database was away.
    logged = _logged_request_ids(platform, holder.account_id)
    assert sum(len(ids) for ids in logged.values()) > 0

    async def request_log_stored() -> bool:
        stored_ids = await _request_log_ids(platform, account_id)
        return all(logged[service] <= stored_ids[service] for service in SERVICES)

    assert await _eventually(request_log_stored, within=15), "request-log entries were lost"

    # The database errors were logged without statement parameters (personal data).
    logs = "\n".join(process.log_path.read_text() for process in platform.processes.values())
    assert recipient_name not in logs
