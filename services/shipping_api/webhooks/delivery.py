"""Delivering the webhook outbox: signed POSTs, exponential backoff for 24 hours.

Due rows are claimed with a lease (``FOR UPDATE SKIP LOCKED`` on PostgreSQL), so several
processes can deliver side by side and a process that dies mid-delivery only delays its rows
until the lease runs out. No database transaction is held open during an HTTP call. While the
database restarts, reading a claimed row and recording its outcome are retried within the lease:
an attempt whose outcome was lost would be made a second time.

An endpoint remembers since when its attempts have been failing (``failing_since``, cleared by
the next success); one that fails after failing for ``disable_after`` is switched off, as the
account's own switch-off does (decision 0206), and an account notice is queued in the same
transaction, so identity mails the account holder. That costs at most one update of the endpoint
by its primary key per outcome, and none while it keeps succeeding or keeps failing within the
window.
"""

from __future__ import annotations

import asyncio
import secrets
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
import orjson
import structlog
from sqlalchemy import case, false, literal, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from libs.common.db import UTCDateTime, retry_while_unavailable
from libs.common.outbox import backoff, claim_due
from services.shipping_api.models import WebhookDelivery, WebhookEndpoint
from services.shipping_api.notifications.account_notices import queue_endpoint_switched_off
from services.shipping_api.webhooks.outbox import DeliveryState, EndpointDisabledReason
from services.shipping_api.webhooks.service import WebhookPolicy, previous_secret
from services.shipping_api.webhooks.signing import (
    DELIVERY_HEADER,
    EVENT_HEADER,
    SIGNATURE_HEADER,
    signature,
)
from services.shipping_api.webhooks.ssrf import UnsafeUrl, parse_target, resolve_safely

log = structlog.get_logger("webhooks")

FIRST_RETRY = timedelta(seconds=30)
MAX_RETRY_GAP = timedelta(hours=2)
DISABLE_AFTER = timedelta(days=5)


def next_attempt(now: datetime, attempts: int) -> datetime:
    """30 s, 1 min, 2 min, 4 min ... capped at 2 h, with up to 10% jitter so a receiver that
    comes back is not hit by every retry at once."""
    delay = backoff(attempts, first=FIRST_RETRY, cap=MAX_RETRY_GAP)
    jitter: timedelta = delay * (secrets.randbelow(1000) / 10_000)
    moment: datetime = now + delay + jitter
    return moment


@dataclass(frozen=True, slots=True)
class Outcome:
    delivered: bool
    status_code: int | None = None
    error: str | None = None
    permanent: bool = False
    """No point retrying: the endpoint or the payload is gone."""

    @property
    def is_endpoint_failure(self) -> bool:
        """The receiver did not take it (an error, no answer, a refused address); an endpoint
        that is off, an erased payload or our own unreadable secret are not the endpoint's."""
        return not self.delivered and not self.permanent


class WebhookDispatcher:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        http: httpx.AsyncClient,
        policy: WebhookPolicy,
        *,
        timeout_seconds: float,
        batch_size: int = 50,
        concurrency: int = 10,
        disable_after: timedelta = DISABLE_AFTER,
    ) -> None:
        """``disable_after``: how long an endpoint fails without a single success before its
        next failure switches it off."""
        self.sessionmaker = sessionmaker
        self.http = http
        self.policy = policy
        self.timeout = timeout_seconds
        self.batch_size = batch_size
        self.concurrency = asyncio.Semaphore(concurrency)
        self.lease = timedelta(seconds=timeout_seconds * 3 + 30)
        self.disable_after = disable_after

    async def run_once(self, now: datetime) -> int:
        """Attempt every delivery due at ``now`` (one batch); returns how many were tried."""
        claimed = await self._claim(now)
        if claimed:
            # Our claim holds for the lease; keep a margin for the last write.
            deadline = time.monotonic() + self.lease.total_seconds() - 5
            await asyncio.gather(
                *(self._deliver(delivery_id, now, deadline) for delivery_id in claimed)
            )
        return len(claimed)

    async def _claim(self, now: datetime) -> Sequence[uuid.UUID]:
        return await claim_due(
            self.sessionmaker,
            WebhookDelivery,
            WebhookDelivery.state == DeliveryState.PENDING,
            now=now,
            lease=self.lease,
            limit=self.batch_size,
        )

    async def _deliver(self, delivery_id: uuid.UUID, now: datetime, deadline: float) -> None:
        async def read() -> tuple[WebhookDelivery, WebhookEndpoint] | None:
            async with self.sessionmaker() as session:
                row = (
                    await session.execute(
                        select(WebhookDelivery, WebhookEndpoint)
                        .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
                        .where(WebhookDelivery.id == delivery_id)
                    )
                ).first()
            return (row[0], row[1]) if row is not None else None

        found = await retry_while_unavailable(read, within=deadline - time.monotonic())
        if found is None:
            return
        delivery, endpoint = found
        async with self.concurrency:
            outcome = await self._attempt(delivery, endpoint, now)
        await self._record(delivery, endpoint, outcome, now, deadline)

    async def _attempt(
        self, delivery: WebhookDelivery, endpoint: WebhookEndpoint, now: datetime
    ) -> Outcome:
        if not endpoint.is_active:
            if endpoint.disabled_reason == EndpointDisabledReason.FAILING:
                return Outcome(False, error="endpoint switched off after failing", permanent=True)
            return Outcome(False, error="endpoint is paused", permanent=True)
        if delivery.payload is None or endpoint.secret_ciphertext is None:
            return Outcome(False, error="payload erased", permanent=True)
        secret = self.policy.secrets.open(endpoint.secret_ciphertext, associated=endpoint.id.bytes)
        if secret is None:
            return Outcome(False, error="signing secret unreadable", permanent=True)
        previous = previous_secret(endpoint, self.policy.secrets, now)
        also = [previous] if previous is not None else []
        try:
            target = parse_target(endpoint.url)
            addresses = await resolve_safely(
                target, self.policy.resolver, allow_loopback=self.policy.allow_loopback
            )
        except UnsafeUrl as exc:
            return Outcome(False, error=f"refused: {exc}"[:300])
        body = orjson.dumps(delivery.payload)
        timestamp = int(now.timestamp())
        headers = {
            "Content-Type": "application/json",
            "Host": target.host_header,
            SIGNATURE_HEADER: signature(secret, timestamp, body, *also),
            EVENT_HEADER: delivery.event,
            DELIVERY_HEADER: str(delivery.id),
        }
        # Connect to the address just checked, never to a second DNS answer.
        url = target.url_for(addresses[0])
        try:
            response = await self.http.post(
                url,
                content=body,
                headers=headers,
                timeout=self.timeout,
                extensions={"sni_hostname": target.host} if target.scheme == "https" else {},
            )
        except httpx.TimeoutException:
            return Outcome(False, error="timed out")
        except httpx.HTTPError as exc:
            return Outcome(False, error=f"connection failed: {type(exc).__name__}")
        if 200 <= response.status_code < 300:
            return Outcome(True, status_code=response.status_code)
        if 300 <= response.status_code < 400:
            return Outcome(
                False, status_code=response.status_code, error="redirects are not followed"
            )
        return Outcome(False, status_code=response.status_code, error="receiver answered an error")

    def _endpoint_change(
        self, endpoint: WebhookEndpoint, outcome: Outcome, now: datetime
    ) -> Any | None:
        """The one update of the endpoint this outcome needs, or ``None``; judged on the
        endpoint as read before the attempt, and again by the update's own condition on the
        row as it is then (another delivery may have recorded an outcome meanwhile)."""
        row = WebhookEndpoint
        if outcome.delivered:
            if endpoint.failing_since is None:
                return None
            return (
                update(row)
                .where(row.id == endpoint.id, row.failing_since.is_not(None))
                .values(failing_since=None)
            )
        if not outcome.is_endpoint_failure:
            return None
        cutoff = now - self.disable_after
        if endpoint.failing_since is not None and endpoint.failing_since >= cutoff:
            return None  # failing, but not for long enough: nothing changes
        at = literal(now, UTCDateTime())
        # SET reads the row as it was: an endpoint failing since before the cutoff is switched
        # off, one that was not failing starts failing now.
        expired = row.failing_since < cutoff
        return (
            update(row)
            .where(
                row.id == endpoint.id,
                row.is_active.is_(True),
                or_(row.failing_since.is_(None), expired),
            )
            .values(
                failing_since=case((row.failing_since.is_(None), at), else_=row.failing_since),
                is_active=case((expired, false()), else_=row.is_active),
                disabled_reason=case(
                    (expired, literal(EndpointDisabledReason.FAILING.value)),
                    else_=row.disabled_reason,
                ),
                disabled_at=case((expired, at), else_=row.disabled_at),
                updated_at=case((expired, at), else_=row.updated_at),
            )
            .returning(row.is_active, row.failing_since, row.url)
        )

    async def _record(
        self,
        delivery: WebhookDelivery,
        endpoint: WebhookEndpoint,
        outcome: Outcome,
        now: datetime,
        deadline: float,
    ) -> None:
        attempts = delivery.attempts + 1
        values: dict[str, object] = {
            "attempts": attempts,
            "last_attempt_at": now,
            "last_status_code": outcome.status_code,
            "last_error": outcome.error,
        }
        if outcome.delivered:
            values |= {
                "state": DeliveryState.DELIVERED,
                "delivered_at": now,
                "next_attempt_at": None,
            }
        else:
            retry_at = next_attempt(now, attempts)
            if outcome.permanent or retry_at > delivery.give_up_at:
                values |= {"state": DeliveryState.FAILED, "next_attempt_at": None}
            else:
                values["next_attempt_at"] = retry_at

        change = self._endpoint_change(endpoint, outcome, now)
        switched_off: list[datetime | None] = []

        async def write() -> None:
            switched_off.clear()
            written = dict(values)
            async with self.sessionmaker() as session:
                if change is not None:
                    result = await session.execute(change)
                    changed = result.first() if outcome.is_endpoint_failure else None
                    if changed is not None and not changed.is_active:
                        switched_off.append(changed.failing_since)
                        # Like the account's own switch-off: the delivery ends here, and can
                        # be redelivered once the endpoint is on again.
                        written |= {"state": DeliveryState.FAILED, "next_attempt_at": None}
                        # In the switch-off's transaction: the account holder is told exactly
                        # when it is committed (decision 0206).
                        await queue_endpoint_switched_off(
                            session,
                            account_id=endpoint.account_id,
                            endpoint_id=endpoint.id,
                            url=changed.url,
                            failing_since=changed.failing_since,
                            disabled_at=now,
                        )
                await session.execute(
                    update(WebhookDelivery)
                    .where(WebhookDelivery.id == delivery.id)
                    .values(**written)
                )
                await session.commit()

        await retry_while_unavailable(write, within=deadline - time.monotonic())
        if switched_off:
            # The account holder hears of it by mail, through identity (the account notice
            # queued above); this line is the operator's record.
            log.warning(
                "webhook_endpoint_switched_off",
                endpoint_id=str(endpoint.id),
                account_id=str(endpoint.account_id),
                reason=EndpointDisabledReason.FAILING.value,
                failing_since=switched_off[0].isoformat() if switched_off[0] else None,
                disabled_at=now.isoformat(),
            )
        log.info(
            "webhook_attempt",
            delivery_id=str(delivery.id),
            webhook_event=delivery.event,
            attempt=attempts,
            delivered=outcome.delivered,
            status_code=outcome.status_code,
            error=outcome.error,
        )
