"""Queries over webhook endpoints and their deliveries."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Select, select
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
