"""Managing an account's webhook endpoints: the rules, no HTTP."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from libs.common.db import uuid7
from libs.common.errors import ValidationFailed
from libs.common.pagination import PageParams, paginate_by_id
from services.shipping_api.errors import (
    EndpointNotPingable,
    NotRedeliverable,
    ReplayUnavailable,
    WebhookDeliveryNotFound,
    WebhookEndpointNotFound,
)
from services.shipping_api.models import WebhookDelivery, WebhookEndpoint
from services.shipping_api.vocabulary import PING_EVENT
from services.shipping_api.webhooks import repository
from services.shipping_api.webhooks.outbox import DeliveryState
from services.shipping_api.webhooks.schemas import WebhookEndpointCreate, WebhookEndpointUpdate
from services.shipping_api.webhooks.secrets import SecretBox, new_secret, secret_hint
from services.shipping_api.webhooks.ssrf import Resolver, UnsafeUrl, parse_target, resolve_safely


@dataclass(frozen=True, slots=True)
class WebhookPolicy:
    resolver: Resolver
    allow_loopback: bool
    secrets: SecretBox


async def check_url(url: str, policy: WebhookPolicy) -> str:
    """Refuse unsafe URLs when they are saved; an unresolvable name is accepted (it is checked
    again at every delivery)."""
    try:
        target = parse_target(url)
        await resolve_safely(target, policy.resolver, allow_loopback=policy.allow_loopback)
    except UnsafeUrl as exc:
        if "does not resolve" in str(exc):
            return url.strip()
        raise ValidationFailed.for_field("url", str(exc)) from exc
    return url.strip()


async def create_endpoint(
    session: AsyncSession,
    account_id: uuid.UUID,
    body: WebhookEndpointCreate,
    *,
    policy: WebhookPolicy,
    now: datetime,
) -> tuple[WebhookEndpoint, str]:
    url = await check_url(body.url, policy)
    endpoint_id = uuid7()
    secret = new_secret()
    endpoint = WebhookEndpoint(
        id=endpoint_id,
        account_id=account_id,
        url=url,
        description=body.description,
        events=[event.value for event in body.events],
        secret_ciphertext=policy.secrets.seal(secret, associated=endpoint_id.bytes),
        secret_hint=secret_hint(secret),
        is_active=True,
        created_at=now,
        updated_at=now,
    )
    session.add(endpoint)
    await session.flush()
    return endpoint, secret


async def get_endpoint(
    session: AsyncSession, endpoint_id: uuid.UUID, account_id: uuid.UUID
) -> WebhookEndpoint:
    endpoint = await repository.get_for_account(session, endpoint_id, account_id)
    if endpoint is None:
        raise WebhookEndpointNotFound()
    return endpoint


async def list_endpoints(
    session: AsyncSession, account_id: uuid.UUID, params: PageParams
) -> tuple[list[WebhookEndpoint], str | None]:
    rows, cursor = await paginate_by_id(
        session, repository.endpoints_of(account_id), WebhookEndpoint.id, params
    )
    return [row for row in rows if isinstance(row, WebhookEndpoint)], cursor


async def update_endpoint(
    session: AsyncSession,
    endpoint_id: uuid.UUID,
    account_id: uuid.UUID,
    body: WebhookEndpointUpdate,
    *,
    policy: WebhookPolicy,
    now: datetime,
) -> WebhookEndpoint:
    # The URL is resolved before the endpoint is read: a DNS answer can take seconds, and no
    # transaction may stay open that long (on SQLite it would hold every other writer).
    url = await check_url(body.url, policy) if body.url is not None else None
    endpoint = await get_endpoint(session, endpoint_id, account_id)
    changes = body.model_dump(exclude_unset=True)
    if url is not None:
        if url != endpoint.url:
            # A new receiver has not failed yet: the clock towards switching off starts again.
            endpoint.failing_since = None
        endpoint.url = url
    if body.events is not None:
        endpoint.events = [event.value for event in body.events]
    if "description" in changes:
        endpoint.description = body.description
    if body.is_active is True and not endpoint.is_active:
        # On again, whoever switched it off: a clean slate (decision 0206).
        endpoint.failing_since = None
        endpoint.disabled_reason = None
        endpoint.disabled_at = None
    if body.is_active is not None:
        endpoint.is_active = body.is_active
    endpoint.updated_at = now
    await session.flush()
    return endpoint


def previous_secret_until(endpoint: WebhookEndpoint, now: datetime) -> datetime | None:
    """Until when deliveries are also signed with the secret before the last rotation."""
    until = endpoint.previous_secret_expires_at
    if endpoint.previous_secret_ciphertext is None or until is None or until <= now:
        return None
    return until


def previous_secret(endpoint: WebhookEndpoint, secrets: SecretBox, now: datetime) -> str | None:
    """The secret before the last rotation, while it still signs (a delivery's second v1)."""
    sealed = endpoint.previous_secret_ciphertext
    if sealed is None or previous_secret_until(endpoint, now) is None:
        return None
    return secrets.open(sealed, associated=endpoint.id.bytes)


async def rotate_secret(
    session: AsyncSession,
    endpoint_id: uuid.UUID,
    account_id: uuid.UUID,
    *,
    previous_valid_hours: int,
    policy: WebhookPolicy,
    now: datetime,
) -> tuple[WebhookEndpoint, str]:
    """A new signing secret; the current one goes on signing beside it for
    ``previous_valid_hours`` (none: it stops at once). A secret from an earlier rotation that
    still signed is dropped: a delivery carries at most two signatures."""
    endpoint = await get_endpoint(session, endpoint_id, account_id)
    secret = new_secret()
    if previous_valid_hours and endpoint.secret_ciphertext is not None:
        # Both are the endpoint's secrets, sealed for the same endpoint.
        endpoint.previous_secret_ciphertext = endpoint.secret_ciphertext
        endpoint.previous_secret_expires_at = now + timedelta(hours=previous_valid_hours)
    else:
        endpoint.previous_secret_ciphertext = None
        endpoint.previous_secret_expires_at = None
    endpoint.secret_ciphertext = policy.secrets.seal(secret, associated=endpoint.id.bytes)
    endpoint.secret_hint = secret_hint(secret)
    endpoint.updated_at = now
    await session.flush()
    return endpoint, secret


async def secret_for_replay(
    session: AsyncSession,
    endpoint_id: uuid.UUID,
    account_id: uuid.UUID,
    *,
    is_first: Callable[[str], bool],
    policy: WebhookPolicy,
) -> str:
    """The signing secret to put back into a replayed answer that showed it (a create or a
    rotation retried under its ``Idempotency-Key``): the endpoint's secret in force, and only
    when ``is_first`` confirms it is the one that answer showed. The stored answer never holds
    the secret (decision 0202)."""
    endpoint = await repository.get_for_account(session, endpoint_id, account_id)
    if endpoint is None:
        raise ReplayUnavailable(
            "The webhook endpoint of this Idempotency-Key's first request has been deleted "
            "since. Use a new key to create another."
        )
    sealed = endpoint.secret_ciphertext
    secret = policy.secrets.open(sealed, associated=endpoint.id.bytes) if sealed else None
    if secret is None or not is_first(secret):
        raise ReplayUnavailable(
            "The signing secret the first answer under this Idempotency-Key showed is no "
            "longer the endpoint's (it was rotated since), so it is not shown again: "
            f"GET /v1/webhook-endpoints/{endpoint.id} shows the endpoint, and rotating its "
            "secret gives a new one."
        )
    return secret


async def delete_endpoint(
    session: AsyncSession, endpoint_id: uuid.UUID, account_id: uuid.UUID
) -> None:
    endpoint = await get_endpoint(session, endpoint_id, account_id)
    await session.delete(endpoint)
    await session.flush()


async def list_deliveries(
    session: AsyncSession, endpoint_id: uuid.UUID, account_id: uuid.UUID, params: PageParams
) -> tuple[list[WebhookDelivery], str | None]:
    await get_endpoint(session, endpoint_id, account_id)
    rows, cursor = await paginate_by_id(
        session, repository.deliveries_of(endpoint_id), WebhookDelivery.id, params
    )
    return [row for row in rows if isinstance(row, WebhookDelivery)], cursor


async def redeliver(
    session: AsyncSession,
    endpoint_id: uuid.UUID,
    delivery_id: uuid.UUID,
    account_id: uuid.UUID,
    *,
    retry_window: timedelta,
    now: datetime,
) -> WebhookDelivery:
    """Queues a delivered or failed delivery again, due now, with a new retry window: the same
    event, payload and ``Parcelpro-Delivery`` id (receivers de-duplicate on it), signed afresh.
    Attempts go on counting."""
    endpoint = await get_endpoint(session, endpoint_id, account_id)
    delivery = await repository.delivery_of(session, endpoint_id, delivery_id)
    if delivery is None:
        raise WebhookDeliveryNotFound()
    if delivery.state == DeliveryState.PENDING:
        raise NotRedeliverable("The delivery is still queued or being sent.")
    if delivery.payload is None:
        raise NotRedeliverable("The event's payload has been erased.")
    if not endpoint.is_active:
        raise NotRedeliverable("The endpoint is paused: resume it first.")
    delivery.state = DeliveryState.PENDING
    delivery.next_attempt_at = now
    delivery.give_up_at = now + retry_window
    delivery.delivered_at = None
    await session.flush()
    return delivery


async def ping(
    session: AsyncSession,
    endpoint_id: uuid.UUID,
    account_id: uuid.UUID,
    *,
    retry_window: timedelta,
    now: datetime,
) -> WebhookDelivery:
    """Queues a ``ping`` delivery to the endpoint, sent, signed, retried and logged as every
    delivery is, so an integrator can check their receiver and its signature check without
    waiting for a shipment. One at a time: another while one is queued is refused."""
    endpoint = await get_endpoint(session, endpoint_id, account_id)
    # The endpoint's row locked (PostgreSQL): two pings at once are one after the other, and
    # the second sees the first as queued.
    await session.refresh(endpoint, with_for_update=True)
    if not endpoint.is_active:
        raise EndpointNotPingable("The endpoint is paused: resume it first.")
    if await repository.pending_ping(session, endpoint_id):
        raise EndpointNotPingable("A ping to this endpoint is still queued or being sent.")
    delivery_id = uuid7()
    delivery = WebhookDelivery(
        id=delivery_id,
        endpoint_id=endpoint_id,
        account_id=account_id,
        shipment_id=None,
        event=PING_EVENT,
        payload={
            "id": str(delivery_id),
            "type": PING_EVENT,
            "created_at": now.isoformat(),
            "data": {"webhook_endpoint": {"id": str(endpoint_id)}},
        },
        state=DeliveryState.PENDING,
        attempts=0,
        next_attempt_at=now,
        give_up_at=now + retry_window,
        created_at=now,
    )
    session.add(delivery)
    await session.flush()
    return delivery


@dataclass(slots=True)
class ResealReport:
    resealed: int = 0
    current: int = 0
    """Secrets, counted one by one (an endpoint may hold the one before its last rotation too)."""
    unreadable: list[uuid.UUID] = field(default_factory=list)
    """Endpoints with a secret no configured key opens: their deliveries fail until the account
    rotates the endpoint's secret."""


async def reseal_secrets(
    sessionmaker: async_sessionmaker[AsyncSession], box: SecretBox, *, batch_size: int = 500
) -> ResealReport:
    """Moves every stored signing secret to the active key (a key rotation's last step), in
    id-ordered batches of one transaction each, so a stopped run is resumed by running it
    again; secrets already under the active key are left as they are."""
    report = ResealReport()
    after: uuid.UUID | None = None
    columns = [column.key for column in repository.SEALED]
    while True:
        async with sessionmaker() as session, session.begin():
            rows = await repository.sealed_secrets_after(session, after, batch_size)
            changes: dict[str, list[dict[str, Any]]] = {column: [] for column in columns}
            stored = (
                (endpoint_id, column, ciphertext)
                for endpoint_id, values in rows
                for column, ciphertext in zip(columns, values, strict=True)
                if ciphertext is not None
            )
            for endpoint_id, column, ciphertext in stored:
                sealed = box.reseal(ciphertext, associated=endpoint_id.bytes)
                if sealed is None:
                    report.unreadable.append(endpoint_id)
                elif sealed == ciphertext:
                    report.current += 1
                else:
                    changes[column].append(
                        {"endpoint_id": endpoint_id, "old": ciphertext, "new": sealed}
                    )
            for column, replaced in changes.items():
                await repository.replace_secrets(session, column, replaced)
                report.resealed += len(replaced)
        if len(rows) < batch_size:
            report.unreadable = list(dict.fromkeys(report.unreadable))
            return report
        after = rows[-1][0]
