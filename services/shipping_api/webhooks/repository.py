"""Queries over webhook endpoints and their deliveries."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Select, bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.shipping_api.models import WebhookDelivery, WebhookEndpoint


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


async def sealed_secrets_after(
    session: AsyncSession, after: uuid.UUID | None, limit: int
) -> list[tuple[uuid.UUID, str]]:
    """The next ``limit`` endpoints with a stored secret, in id order after ``after``."""
    query = (
        select(WebhookEndpoint.id, WebhookEndpoint.secret_ciphertext)
        .where(WebhookEndpoint.secret_ciphertext.is_not(None))
        .order_by(WebhookEndpoint.id)
        .limit(limit)
    )
    if after is not None:
        query = query.where(WebhookEndpoint.id > after)
    return [(endpoint_id, sealed) for endpoint_id, sealed in await session.execute(query) if sealed]


_REPLACE_SECRET = (
    update(WebhookEndpoint)
    .where(
        WebhookEndpoint.id == bindparam("endpoint_id"),
        # Unless the secret changed meanwhile (the endpoint was erased, say).
        WebhookEndpoint.secret_ciphertext == bindparam("old"),
    )
    .values(secret_ciphertext=bindparam("new"))
)


async def replace_secrets(session: AsyncSession, changes: list[dict[str, Any]]) -> None:
    """``changes``: ``{"endpoint_id", "old", "new"}`` each, in one executemany (on the
    connection: the ORM would take a list of parameters for an update by primary key)."""
    if changes:
        connection = await session.connection()
        await connection.execute(_REPLACE_SECRET, changes)
