"""SIGTERM (what ``make run``'s Ctrl-C, Docker and Kubernetes send): the service stops taking
connections, lets the requests in flight finish — for at most ``<SVC>_SHUTDOWN_TIMEOUT_SECONDS``
— stops its background workers, and stores the request-log entries still queued in memory
before it exits."""

from __future__ import annotations

import asyncio
import signal
import time
import uuid
from collections.abc import AsyncIterator, Iterator

import httpx
import orjson
import pytest
from sqlalchemy import select

from services.shipping_api.models import RequestLog, Shipment
from tests.faults.webhook_receiver import holding_receiver
from tests.support.platform import (
    FAST_PASSWORD_HASHING,
    AccountHolder,
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
        "SHIPPING_WEBHOOK_TIMEOUT_SECONDS": "30",
        # Entries stay queued in memory until shutdown writes them.
        "SHIPPING_REQUEST_LOG_FLUSH_SECONDS": "60",
    }
    base = tmp_path_factory.mktemp("graceful-shutdown")
    with running_stack(
        base, suffix="faults_term", extra_env=env, services=("identity", "shipping")
    ) as stack:
        yield stack


def start_shipping(stack: Stack, *, shutdown_timeout: int) -> None:
    if "shipping" in stack.processes:
        stack.stop("shipping")
    stack.env["SHIPPING_SHUTDOWN_TIMEOUT_SECONDS"] = str(shutdown_timeout)
    stack.start("shipping")
    stack.wait_ready(("shipping",))


async def sigterm_and_wait(stack: Stack, *, within: float) -> float:
    """Send SIGTERM to shipping and wait for it to exit; how long that took. The exit must be
    the graceful one: the app's shutdown ran to its end ("stopped" logged)."""
    process = stack.processes["shipping"]
    started = time.monotonic()
    process.popen.terminate()
    code = await asyncio.to_thread(process.popen.wait, within)
    elapsed = time.monotonic() - started
    stack.stop("shipping")  # forget the exited process
    # uvicorn re-raises the signal it handled once it is done, so the status is SIGTERM's.
    assert code in {0, -signal.SIGTERM}
    events = [line.get("event") for line in process.json_lines()]
    last_life = events[len(events) - 1 - events[::-1].index("Shutting down") :]
    assert "stopped" in last_life, last_life
    return elapsed


class TricklingBody:
    """A shipment body sent in pieces over ``seconds``: the request is in flight meanwhile."""

    def __init__(self, body: dict[str, object], *, seconds: float, pieces: int = 5) -> None:
        self.data = orjson.dumps(body)
        self.pause = seconds / (pieces - 1)
        self.pieces = pieces
        self.first_piece_sent = asyncio.Event()

    async def __aiter__(self) -> AsyncIterator[bytes]:
        size = -(-len(self.data) // self.pieces)
        for offset in range(0, len(self.data), size):
            if offset:
                self.first_piece_sent.set()
                await asyncio.sleep(self.pause)
            yield self.data[offset : offset + size]


async def logged_requests(stack: Stack, holder: AccountHolder) -> set[str]:
    rows = await query(
        stack,
        "shipping",
        select(RequestLog.request_id).where(RequestLog.account_id == uuid.UUID(holder.account_id)),
    )
    return {row.request_id for row in rows}


async def test_sigterm_finishes_requests_in_flight_and_stores_the_queued_request_log(
    platform: Stack,
) -> None:
    start_shipping(platform, shutdown_timeout=10)
    shipping = platform.service_url("shipping")
    async with httpx.AsyncClient(base_url=platform.service_url("identity"), timeout=30) as client:
        holder = await sign_up(client)
    async with httpx.AsyncClient(base_url=shipping, timeout=30) as client:
        quick = [f"term-quick-{n}-{uuid.uuid4().hex[:6]}" for n in range(5)]
        for request_id in quick:
            listed = await client.get(
                "/v1/shipments", headers={**holder.headers, "X-Request-ID": request_id}
            )
            assert listed.status_code == 200

        slow_id = f"term-slow-{uuid.uuid4().hex[:6]}"
        body = TricklingBody(new_shipment("TERM-SLOW"), seconds=2.0)
        in_flight = asyncio.create_task(
            client.post(
                "/v1/shipments",
                content=body,
                headers={
                    **holder.headers,
                    "X-Request-ID": slow_id,
                    "Content-Type": "application/json",
                },
            )
        )
        await body.first_piece_sent.wait()
        await asyncio.sleep(0.2)
        exit_task = asyncio.create_task(sigterm_and_wait(platform, within=20))

        # New connections are refused at once; the request in flight carries on.
        await asyncio.sleep(0.5)
        with pytest.raises(httpx.ConnectError):
            await httpx.AsyncClient(base_url=shipping).get("/healthz")
        created = await in_flight
        assert created.status_code == 201, created.text
        elapsed = await exit_task

    assert elapsed < 10
    stored = await query(
        platform, "shipping", select(Shipment.reference).where(Shipment.reference == "TERM-SLOW")
    )
    assert stored == [("TERM-SLOW",)]
    # The queued entries (the flush interval is a minute) were written on the way out.
    assert {*quick, slow_id} <= await logged_requests(platform, holder)


async def test_sigterm_does_not_wait_longer_than_the_shutdown_timeout(platform: Stack) -> None:
    shutdown_timeout = 2
    start_shipping(platform, shutdown_timeout=shutdown_timeout)
    shipping = platform.service_url("shipping")
    async with httpx.AsyncClient(base_url=platform.service_url("identity"), timeout=30) as client:
        holder = await sign_up(client)
    with holding_receiver() as receiver:
        async with httpx.AsyncClient(base_url=shipping, timeout=60) as client:
            await subscribe_webhooks(client, holder, receiver.url, ("shipment.created",))
            receiver.hold()
            quick_id = f"term-quick-{uuid.uuid4().hex[:6]}"
            created = await client.post(
                "/v1/shipments",
                json=new_shipment("TERM-HOOK"),
                headers={**holder.headers, "X-Request-ID": quick_id},
            )
            assert created.status_code == 201
            # A webhook POST the receiver does not answer (its timeout is 30 s)...
            await receiver.wait_for("a delivery in flight", lambda: receiver.in_flight == 1)
            # ...and a request whose body would take 30 s to arrive.
            body = TricklingBody(new_shipment("TERM-ENDLESS"), seconds=30.0, pieces=31)
            endless = asyncio.create_task(
                client.post(
                    "/v1/shipments",
                    content=body,
                    headers={**holder.headers, "Content-Type": "application/json"},
                )
            )
            await body.first_piece_sent.wait()
            elapsed = await sigterm_and_wait(platform, within=30)
            with pytest.raises(httpx.HTTPError):
                await endless

    # The request gets the shutdown timeout, the worker's round as long again at most, then the
    # process exits (with the request log stored).
    assert shutdown_timeout <= elapsed < 2 * shutdown_timeout + 4
    assert quick_id in await logged_requests(platform, holder)
