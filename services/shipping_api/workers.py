"""Background work inside the service: the outbox worker (webhooks, recipient e-mail and account
notices) and, in development, the periodic retention purge. Both stop cleanly with the
service."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from typing import Protocol

import structlog
from fastapi import FastAPI

from libs.common.app import Lifespan
from libs.common.clock import Clock
from services.shipping_api.retention.service import run_retention
from services.shipping_api.settings import ShippingSettings

log = structlog.get_logger("workers")


# On shutdown a round in progress may finish for this long (a webhook POST's default timeout),
# never longer than the service's own shutdown timeout; then it is cancelled. Its claimed rows
# are resumed by the next process once their lease lapses, so nothing is lost, and shutdown stays
# within the orchestrator's grace period, before which the request log must be flushed.
WORKER_STOP_SECONDS = 10.0


@contextlib.asynccontextmanager
async def _periodic(
    name: str, interval: float, work: Callable[[], Awaitable[object]], *, stop_seconds: float
) -> AsyncIterator[None]:
    stopping = asyncio.Event()

    async def loop() -> None:
        while not stopping.is_set():
            try:
                await work()
            except Exception:
                # A broken round (database briefly away) must not end the worker.
                log.exception("worker_round_failed", worker=name)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), timeout=interval)

    task = asyncio.create_task(loop(), name=name)
    try:
        yield
    finally:
        stopping.set()
        try:
            await asyncio.wait_for(task, timeout=stop_seconds)
        except TimeoutError:
            log.warning("worker_cancelled_on_shutdown", worker=name)


class Outbox(Protocol):
    async def run_once(self, now: datetime) -> int:
        """Work what is due at ``now`` (one batch); returns how many items were tried."""
        ...


async def drain_outboxes(clock: Clock, *outboxes: Outbox) -> int:
    """Work every outbox until nothing is due; returns how many items were tried."""
    total = 0
    while True:
        now = clock.now()
        done = 0
        for outbox in outboxes:
            done += await outbox.run_once(now)
        total += done
        if not done:
            return total


def _stop_seconds(settings: ShippingSettings) -> float:
    return min(WORKER_STOP_SECONDS, float(settings.shutdown_timeout_seconds))


def outbox_worker(settings: ShippingSettings) -> Lifespan:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if not settings.outbox_worker_enabled or app.state.database.is_shared_connection:
            yield
            return

        async def work() -> None:
            await drain_outboxes(
                app.state.clock,
                app.state.webhook_dispatcher,
                app.state.recipient_mail,
                app.state.account_notices,
            )

        async with _periodic(
            "outbox-worker",
            settings.outbox_poll_seconds,
            work,
            stop_seconds=_stop_seconds(settings),
        ):
            yield

    return lifespan


def retention_worker(settings: ShippingSettings) -> Lifespan:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if not settings.purge_in_process or app.state.database.is_shared_connection:
            yield
            return

        async def work() -> None:
            report = await run_retention(
                app.state.database.sessionmaker, settings, now=app.state.clock.now()
            )
            log.info(
                "retention_purged",
                shipments=report.shipments,
                webhook_deliveries=report.webhook_deliveries,
                previous_webhook_secrets=report.previous_webhook_secrets,
                idempotency_keys=report.idempotency_keys,
                request_log=report.request_log,
                support_access_log=report.support_access_log,
            )

        async with _periodic(
            "retention-purge",
            settings.purge_interval_seconds,
            work,
            stop_seconds=_stop_seconds(settings),
        ):
            yield

    return lifespan
