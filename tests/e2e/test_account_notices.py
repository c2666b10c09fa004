"""A webhook endpoint that keeps failing is switched off and its account holder is mailed, with
every service running as a real process: shipping's outbox worker hands the notice to identity,
whose mail outbox sends it (decisions 0206 and 0112)."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from services.shipping_api.models import WebhookEndpoint
from tests.support.platform import (
    AccountHolder,
    execute,
    register_and_login,
    shipment_payload,
    wait_for_mail,
)
from tests.support.stack import Stack

pytestmark = pytest.mark.e2e

# RFC 2606: never resolves, so every delivery fails the way a dead receiver's does.
DEAD_URL = "https://hooks.boekenkast.invalid/parcelpro"


def _endpoint(client: httpx.Client, holder: AccountHolder, endpoint_id: str) -> dict[str, Any]:
    listed = client.get("/v1/webhook-endpoints", headers=holder.headers)
    assert listed.status_code == 200, listed.text
    [endpoint] = [e for e in listed.json()["data"] if e["id"] == endpoint_id]
    return endpoint


def test_an_endpoint_switched_off_after_failing_is_mailed_to_its_account_holder(
    stack: Stack,
) -> None:
    with httpx.Client(base_url=stack.gateway_url, timeout=30.0) as client:
        holder = register_and_login(client)
        created = client.post(
            "/v1/webhook-endpoints",
            json={"url": DEAD_URL, "events": ["shipment.created"]},
            headers=holder.headers,
        )
        assert created.status_code == 201, created.text
        endpoint_id = created.json()["id"]
        # Failing, without a single success, for longer than the 5 days that switch it off.
        failing_since = datetime.now(UTC) - timedelta(days=6)
        asyncio.run(
            execute(
                stack,
                "shipping",
                update(WebhookEndpoint)
                .where(WebhookEndpoint.id == uuid.UUID(endpoint_id))
                .values(failing_since=failing_since),
            )
        )

        shipment = client.post("/v1/shipments", json=shipment_payload(), headers=holder.headers)
        assert shipment.status_code == 201, shipment.text

        mail = wait_for_mail(stack.base_dir / "var", holder.email, within=30.0, containing=DEAD_URL)
        assert endpoint_id in mail
        assert "redeliver" in mail

        endpoint = _endpoint(client, holder, endpoint_id)
        assert endpoint["is_active"] is False
        assert endpoint["disabled_reason"] == "failing"

        # Identity has it: nothing of it is left waiting in shipping's outbox.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            lines = [
                line
                for line in stack.log_lines()
                if line.get("event") == "account_notice_delivered"
                and line.get("account_id") == holder.account_id
            ]
            if lines:
                break
            time.sleep(0.1)
        assert lines, "shipping logged no delivered notice"
