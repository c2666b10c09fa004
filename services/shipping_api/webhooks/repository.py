"""Queries over webhook endpoints and their deliveries."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Select, bindparam, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.shipping_api.models import WebhookDelivery, WebhookEndpoint
from services.shipping_api.vocabulary import PING_EVENT
from services.shipping_api.webhooks.outbox import DeliveryState


async def get_for_account(
    session: AsyncSession, endpoint_id: uuid.UUID, account_id: uuid.UUID
) -> WebhookEndpoint | None:
    return await session.scalar(
        select(WebhookEndpoint).where(
            WebhookEndpoint.id == endpoint_id, WebhookEndpoint.account_id == account_id
        )
    )


def endpoints_of(account_id: uuid.UUID) -> Select[Any]:
    return select(WebhookEndpoint).where(WebhookEndpoint.account_id == account_id)


def deliveries_of(endpoint_id: uuid.UUID) -> Select[Any]:
    return select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint_id)


async def delivery_of(
    session: AsyncSession, endpoint_id: uuid.UUID, delivery_id: uuid.UUID
) -> WebhookDelivery | None:
    """The delivery, locked for the change (``FOR UPDATE`` on PostgreSQL): the worker may be
    recording an attempt of it at the same moment."""
    return await session.scalar(
        select(WebhookDelivery)
        .where(WebhookDelivery.endpoint_id == endpoint_id, WebhookDelivery.id == delivery_id)
        .with_for_update()
    )


async def pending_ping(session: AsyncSession, endpoint_id: uuid.UUID) -> bool:
    """Whether a ping to the endpoint is still queued or being sent (read through the index of
    pending deliveries: the outbox's backlog, never the whole log)."""
    found = await session.scalar(
        select(WebhookDelivery.id)
        .where(
            WebhookDelivery.state == DeliveryState.PENDING,
            WebhookDelivery.endpoint_id == endpoint_id,
            WebhookDelivery.event == PING_EVENT,
        )
        .limit(1)
    )
    return found is not None


SEALED = (WebhookEndpoint.secret_ciphertext, WebhookEndpoint.previous_secret_ciphertext)
"""The columns holding sealed secrets: the current one, and the one before the last rotation."""


async def sealed_secrets_after(
    session: AsyncSession, after: uuid.UUID | None, limit: int
) -> list[tuple[uuid.UUID, list[str | None]]]:
    """The next ``limit`` endpoints with a stored secret, in id order after ``after``, each
    with the values of :data:`SEALED`."""
    query = (
        select(WebhookEndpoint.id, *SEALED)
        .where(or_(*(column.is_not(None) for column in SEALED)))
        .order_by(WebhookEndpoint.id)
        .limit(limit)
    )
    if after is not None:
        query = query.where(WebhookEndpoint.id > after)
    return [(row[0], list(row[1:])) for row in await session.execute(query)]


def _replacing(column: Any) -> Any:
    return (
        update(WebhookEndpoint)
        .where(
            WebhookEndpoint.id == bindparam("endpoint_id"),
            # Unless the secret changed meanwhile (rotated, or the endpoint erased).
            column == bindparam("old"),
        )
        .values({column.key: bindparam("new")})
    )


_REPLACE = {column.key: _replacing(column) for column in SEALED}


async def replace_secrets(
    session: AsyncSession, column: str, changes: list[dict[str, Any]]
) -> None:
    """``changes`` of ``column``: ``{"endpoint_id", "old", "new"}`` each, in one executemany
    (on the connection: the ORM would take a list of parameters for an update by primary key)."""
    if changes:
        connection = await session.connection()
        await connection.execute(_REPLACE[column], changes)
