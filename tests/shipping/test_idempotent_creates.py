"""Idempotency-Key on shipping's other creates: webhook endpoints (whose answer holds a secret
that is never stored with it), secret rotations and support notes (keys of a staff user)."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import func, select

from libs.common.auth import Role
from services.shipping_api.models import IdempotencyKey, SupportNote, WebhookEndpoint
from services.shipping_api.recipients.erasure import erase_shipments
from services.shipping_api.webhooks.signing import verify
from tests.shipping.conftest import Shipping
from tests.support.shipping_receiver import Receiver
from tests.support.tokens import bearer

HOOKS = "/v1/webhook-endpoints"
HOOK = {"url": "https://shop.example.nl/hook", "events": ["shipment.created"]}


def keyed(headers: dict[str, str], key: str) -> dict[str, str]:
    return {**headers, "Idempotency-Key": key}


async def count(shipping: Shipping, model: Any) -> int:
    async with shipping.session() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def stored_answers(shipping: Shipping) -> list[IdempotencyKey]:
    async with shipping.session() as session:
        return list((await session.scalars(select(IdempotencyKey))).all())


async def test_retried_endpoint_create_returns_the_same_endpoint_and_secret(
    shipping: Shipping,
) -> None:
    headers = keyed(shipping.headers, "hook-setup-1")
    first = await shipping.client.post(HOOKS, json=HOOK, headers=headers)
    assert first.status_code == 201
    # The same JSON in another key order is the same request.
    again = await shipping.client.post(HOOKS, json=dict(reversed(HOOK.items())), headers=headers)
    assert again.status_code == 201
    assert again.json() == first.json()
    assert again.json()["secret"].startswith("whsec_")
    assert again.headers["idempotent-replayed"] == "true"
    assert again.headers["location"] == first.headers["location"] == f"{HOOKS}/{first.json()['id']}"
    assert again.headers["cache-control"] == first.headers["cache-control"] == "no-store"
    assert await count(shipping, WebhookEndpoint) == 1
    [row] = await stored_answers(shipping)
    assert row.resource_id == uuid.UUID(first.json()["id"])
    assert first.json()["secret"] not in (row.response_body or "")
    assert first.json()["secret_hint"] in (row.response_body or "")


async def test_the_replayed_secret_verifies_deliveries(
    shipping: Shipping, receiver: Receiver
) -> None:
    body = {"url": receiver.url, "events": ["shipment.created"]}
    headers = keyed(shipping.headers, "hook-setup-2")
    await shipping.client.post(HOOKS, json=body, headers=headers)
    replayed = await shipping.client.post(HOOKS, json=body, headers=headers)
    assert replayed.headers["idempotent-replayed"] == "true"
    await shipping.create()
    assert await shipping.app.state.webhook_dispatcher.run_once(shipping.clock.now()) == 1
    [received] = await receiver.wait_for(1)
    signed = received.headers["parcelpro-signature"]
    assert verify(replayed.json()["secret"], signed, received.body)


async def test_same_key_with_another_endpoint_is_422_and_creates_nothing(
    shipping: Shipping,
) -> None:
    headers = keyed(shipping.headers, "hook-setup-3")
    await shipping.client.post(HOOKS, json=HOOK, headers=headers)
    other = await shipping.client.post(
        HOOKS, json={**HOOK, "url": "https://shop.example.nl/other"}, headers=headers
    )
    assert other.status_code == 422
    assert other.json()["errors"][0]["field"] == "Idempotency-Key"
    assert "secret" not in other.json()
    assert await count(shipping, WebhookEndpoint) == 1


async def test_another_accounts_same_key_creates_its_own_endpoint(shipping: Shipping) -> None:
    mine = await shipping.client.post(
        HOOKS, json=HOOK, headers=keyed(shipping.headers, "shared-key")
    )
    _, other = shipping.other_account()
    theirs = await shipping.client.post(HOOKS, json=HOOK, headers=keyed(other, "shared-key"))
    assert theirs.status_code == 201
    assert "idempotent-replayed" not in theirs.headers
    assert theirs.json()["id"] != mine.json()["id"]
    assert theirs.json()["secret"] != mine.json()["secret"]
    assert await count(shipping, WebhookEndpoint) == 2


async def test_no_replay_hands_out_a_secret_rotated_or_deleted_since(shipping: Shipping) -> None:
    headers = keyed(shipping.headers, "hook-setup-4")
    first = (await shipping.client.post(HOOKS, json=HOOK, headers=headers)).json()
    path = f"{HOOKS}/{first['id']}"
    rotated = await shipping.client.post(f"{path}/rotate-secret", headers=shipping.headers)
    assert rotated.status_code == 200

    replay = await shipping.client.post(HOOKS, json=HOOK, headers=headers)
    assert replay.status_code == 409
    assert replay.json()["type"].endswith("replay-unavailable")
    assert "rotated" in replay.json()["detail"]
    assert rotated.json()["secret"] not in replay.text
    assert first["secret"] not in replay.text
    assert "retry-after" not in replay.headers

    assert (await shipping.client.delete(path, headers=shipping.headers)).status_code == 204
    gone = await shipping.client.post(HOOKS, json=HOOK, headers=headers)
    assert gone.status_code == 409
    assert "deleted" in gone.json()["detail"]
    # The key stays bound to its first request: nothing new was made under it.
    assert await count(shipping, WebhookEndpoint) == 0


async def test_a_retried_rotation_rotates_once(shipping: Shipping) -> None:
    created = (await shipping.client.post(HOOKS, json=HOOK, headers=shipping.headers)).json()
    path = f"{HOOKS}/{created['id']}/rotate-secret"
    headers = keyed(shipping.headers, "rotate-1")
    first = await shipping.client.post(path, json={}, headers=headers)
    again = await shipping.client.post(path, json={}, headers=headers)
    assert again.status_code == first.status_code == 200
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    # One rotation: the secret from the create still signs beside the new one.
    async with shipping.session() as session:
        endpoint = await session.get(WebhookEndpoint, uuid.UUID(created["id"]))
    assert endpoint is not None
    box = shipping.app.state.webhook_policy.secrets
    sealed = endpoint.previous_secret_ciphertext
    assert sealed is not None
    assert box.open(sealed, associated=endpoint.id.bytes) == created["secret"]
    assert all(
        first.json()["secret"] not in (row.response_body or "")
        for row in await stored_answers(shipping)
    )

    await shipping.client.post(path, json={}, headers=shipping.headers)
    stale = await shipping.client.post(path, json={}, headers=headers)
    assert stale.status_code == 409
    assert first.json()["secret"] not in stale.text


async def test_retried_note_is_recorded_once_per_staff_user(shipping: Shipping) -> None:
    shipment = await shipping.create()
    path = f"/v1/shipments/{shipment['id']}/notes"
    note = {"channel": "phone", "body": "Recipient asked for delivery on Friday."}
    staff_id = uuid.uuid4()
    staff = bearer(shipping.issuer.staff(Role.SUPPORT, staff_id=staff_id))
    first = await shipping.client.post(path, json=note, headers=keyed(staff, "call-77"))
    again = await shipping.client.post(path, json=note, headers=keyed(staff, "call-77"))
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert again.headers["location"] == first.headers["location"] == f"{path}/{first.json()['id']}"
    assert await count(shipping, SupportNote) == 1

    changed = await shipping.client.post(
        path, json={**note, "channel": "email"}, headers=keyed(staff, "call-77")
    )
    assert changed.status_code == 422
    assert changed.json()["errors"][0]["field"] == "Idempotency-Key"

    colleague = keyed(shipping.staff(Role.SUPPORT), "call-77")
    theirs = await shipping.client.post(path, json=note, headers=colleague)
    assert theirs.status_code == 201
    assert "idempotent-replayed" not in theirs.headers
    assert theirs.json()["id"] != first.json()["id"]
    assert await count(shipping, SupportNote) == 2
    scopes = {row.scope for row in await stored_answers(shipping)}
    assert f"staff:{staff_id}" in scopes
    assert str(shipping.account_id) not in scopes


async def test_erasing_the_shipment_drops_its_notes_stored_answers(shipping: Shipping) -> None:
    shipment = await shipping.create()
    note = {"channel": "phone", "body": "Recipient Jan Jansen moved to Dorpsstraat 9."}
    response = await shipping.client.post(
        f"/v1/shipments/{shipment['id']}/notes",
        json=note,
        headers=keyed(shipping.staff(Role.SUPPORT), "call-78"),
    )
    assert response.status_code == 201
    [row] = await stored_answers(shipping)
    assert "Jan Jansen" in (row.response_body or "")
    async with shipping.session() as session:
        await erase_shipments(session, [uuid.UUID(shipment["id"])], now=shipping.clock.now())
        await session.commit()
    assert await stored_answers(shipping) == []
