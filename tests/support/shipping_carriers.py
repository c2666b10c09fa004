"""Signed carrier pushes for shipping_api tests."""

from __future__ import annotations

from typing import Any

import httpx
import orjson

from services.shipping_api.carriers.signatures import SIGNATURE_HEADER, sign


async def push_event(
    client: httpx.AsyncClient,
    carrier: str,
    event: dict[str, Any],
    *,
    secret: str | None = None,
) -> httpx.Response:
    body = orjson.dumps(event)
    secret = secret if secret is not None else f"dev-only-carrier-{carrier}"
    return await client.post(
        f"/v1/carriers/{carrier}/events",
        content=body,
        headers={"Content-Type": "application/json", SIGNATURE_HEADER: sign(secret, body)},
    )


def carrier_event(tracking_code: str, status: str, event_id: str, **changes: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "event_id": event_id,
        "tracking_code": tracking_code,
        "status": status,
        "occurred_at": "2026-11-25T10:00:00Z",
        "city": "Nieuwegein",
        "description": "Scanned",
    }
    event.update(changes)
    return event
