"""A privacy request survives a service being down and privacy itself being killed: it waits,
resumes, completes, and nothing is applied or mailed twice."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.platform import (
    issue_api_key,
    outbox_messages,
    register_and_login,
    shipment_payload,
    six_digit_code,
    wait_for_mail,
    wait_for_status,
)
from tests.support.stack import Stack, running_stack

pytestmark = pytest.mark.e2e


@pytest.fixture
def outage_stack(tmp_path: Path) -> Iterator[Stack]:
    fast_retries = {
        "PRIVACY_TASK_BACKOFF_INITIAL_SECONDS": "0.5",
        "PRIVACY_TASK_BACKOFF_MAX_SECONDS": "2",
        "PRIVACY_TASK_LEASE_SECONDS": "5",
        "PRIVACY_WORKER_POLL_SECONDS": "0.2",
    }
    with running_stack(tmp_path, suffix="outage", extra_env=fast_retries) as stack:
        yield stack


def test_erasure_waits_for_a_stopped_service_and_survives_a_killed_privacy_service(
    outage_stack: Stack,
) -> None:
    stack = outage_stack
    var = stack.base_dir / "var"
    client = httpx.Client(base_url=stack.gateway_url, timeout=30.0)
    shop = register_and_login(client)
    _, key = issue_api_key(client, shop, "shipments:read", "shipments:write")
    auth = {"Authorization": f"Bearer {key}"}
    payload = shipment_payload()
    recipient = payload["recipient"]["email"]
    shipment = client.post("/v1/shipments", json=payload, headers=auth).json()

    stack.stop("shipping")
    request = client.post("/v1/privacy/requests", json={"type": "erasure", "email": recipient})
    assert request.status_code == 201, request.text
    created = request.json()
    token = {"X-Privacy-Request-Token": created["access_token"]}
    code = six_digit_code(wait_for_mail(var, recipient))
    url = f"/v1/privacy/requests/{created['id']}"
    assert client.post(f"{url}/verify", json={"code": code}, headers=token).status_code == 200

    # Shipping is down: the request waits (it neither completes nor fails).
    time.sleep(4)
    waiting = client.get(url, headers=token).json()
    assert waiting["status"] in {"verified", "in_progress"}, waiting

    # privacy_api dies without warning while the request is pending, and comes back.
    stack.stop("privacy", kill=True)
    stack.start("privacy")
    stack.wait_ready(("privacy",))
    stack.start("shipping")
    stack.wait_ready(("shipping",))

    done = wait_for_status(client, url, headers=token, statuses={"completed", "failed"})
    assert done["status"] == "completed", done
    shipping_task = next(t for t in done["tasks"] if t["service"] == "shipping")
    assert shipping_task["attempts"] > 1  # it failed while shipping was down, then succeeded
    assert sum(shipping_task["result"]["erased"].values()) >= 1
    after = client.get(f"/v1/shipments/{shipment['id']}", headers=auth).json()
    assert payload["recipient"]["name"] not in str(after)
    assert recipient not in str(after)

    # Exactly one code mail and one completion mail: nothing was sent twice.
    time.sleep(1)
    mails = outbox_messages(var, recipient)
    assert len(mails) == 2, [m["Subject"] for m in mails]
    client.close()
