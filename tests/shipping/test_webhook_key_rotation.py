"""Rotating the key that seals webhook signing secrets: deliveries stay signed with each
endpoint's own secret before, during and after, and ``reseal-webhook-secrets`` moves the
stored secrets to the new key (decision 0213)."""

from __future__ import annotations

import asyncio
import os
import secrets
import uuid
from typing import Any

import orjson
import pytest
from pydantic import ValidationError
from sqlalchemy import select

from services.shipping_api.models import WebhookEndpoint
from services.shipping_api.settings import ShippingSettings
from services.shipping_api.webhooks.secrets import SecretBox
from services.shipping_api.webhooks.service import reseal_secrets
from services.shipping_api.webhooks.signing import verify
from tests.shipping.conftest import Shipping, delete_account_rows, settings_for, start_shipping
from tests.shipping.test_app import STRONG, production
from tests.shipping.test_webhooks import deliver, register, rotate
from tests.support.programs import run_program
from tests.support.shipping_receiver import Receiver
from tests.support.tokens import TokenIssuer

ENDPOINT = uuid.uuid4().bytes


def new_key() -> str:
    return secrets.token_urlsafe(32)


def test_previous_keys_open_and_reseal_moves_a_secret_to_the_active_key() -> None:
    old, new = new_key(), new_key()
    sealed = SecretBox(old).seal("whsec_abc", associated=ENDPOINT)
    rotating = SecretBox(new, [old])
    assert SecretBox(new).open(sealed, associated=ENDPOINT) is None
    assert rotating.open(sealed, associated=ENDPOINT) == "whsec_abc"
    assert rotating.open(sealed, associated=uuid.uuid4().bytes) is None

    resealed = rotating.reseal(sealed, associated=ENDPOINT)
    assert resealed is not None
    assert resealed != sealed
    assert SecretBox(new).open(resealed, associated=ENDPOINT) == "whsec_abc"
    assert SecretBox(old).open(resealed, associated=ENDPOINT) is None
    # Already under the active key: left as it is; opened by no key: nothing to reseal.
    assert rotating.reseal(resealed, associated=ENDPOINT) == resealed
    assert SecretBox(new_key()).reseal(sealed, associated=ENDPOINT) is None
    assert rotating.reseal("not base64!", associated=ENDPOINT) is None


def test_previous_keys_come_as_a_json_list_and_production_wants_real_ones(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    keys = [new_key(), new_key()]
    monkeypatch.setenv("SHIPPING_WEBHOOK_SECRET_PREVIOUS_KEYS", orjson.dumps(keys).decode())
    assert ShippingSettings().webhook_secret_previous_keys == keys

    assert production(webhook_secret_previous_keys=[STRONG]).webhook_secret_previous_keys
    for previous in (["too short"], ["dev-only-webhook-secret-key"]):
        with pytest.raises(ValidationError, match=r"SHIPPING_WEBHOOK_SECRET_PREVIOUS_KEYS\[0\]"):
            production(webhook_secret_previous_keys=previous)


async def reseal(settings: ShippingSettings) -> tuple[int, dict[str, Any]]:
    """``shipping reseal-webhook-secrets``, run as operators run it, with ``settings``' keys:
    its exit status and the summary it prints last."""
    env = {
        **os.environ,
        "SHIPPING_DATABASE_URL": settings.database_url,
        "SHIPPING_WEBHOOK_SECRET_KEY": settings.webhook_secret_key,
        "SHIPPING_WEBHOOK_SECRET_PREVIOUS_KEYS": orjson.dumps(
            settings.webhook_secret_previous_keys
        ).decode(),
    }
    program = "from services.shipping_api.__main__ import main, main_for; main_for(main)"
    done = await asyncio.to_thread(run_program, program, "reseal-webhook-secrets", env=env)
    summary: dict[str, Any] = orjson.loads(done.stdout.strip().splitlines()[-1])
    return done.returncode, summary


async def stored_secret(shipping: Shipping, endpoint_id: str) -> str:
    async with shipping.database.session() as session:
        value = await session.scalar(
            select(WebhookEndpoint.secret_ciphertext).where(
                WebhookEndpoint.id == uuid.UUID(endpoint_id)
            )
        )
    assert value is not None
    return value


async def test_a_key_rotation_keeps_every_delivery_signed_with_the_endpoints_secret(
    shipping_settings: ShippingSettings,
    issuer: TokenIssuer,
    receiver: Receiver,
) -> None:
    old = shipping_settings.webhook_secret_key
    new = new_key()
    rotating = settings_for(
        shipping_settings, webhook_secret_key=new, webhook_secret_previous_keys=[old]
    )
    rotated = settings_for(shipping_settings, webhook_secret_key=new)
    async with start_shipping(settings_for(shipping_settings), issuer, committed=True) as shop:
        try:
            endpoint = await register(shop, receiver.url)
            sealed_by_old = await stored_secret(shop, endpoint["id"])

            # Mid-rotation: processes with the new key deliver what the old key sealed.
            await shop.create()
            async with start_shipping(rotating, issuer, committed=True) as worker:
                assert await deliver(worker) == 1
            [first] = await receiver.wait_for(1)
            assert verify(endpoint["secret"], first.headers["parcelpro-signature"], first.body)

            # Dropping the old key too early: the command says which secret it cannot open
            # and leaves it untouched.
            code, summary = await reseal(rotated)
            assert code == 1
            assert endpoint["id"] in summary["unreadable_endpoints"]
            assert await stored_secret(shop, endpoint["id"]) == sealed_by_old

            code, summary = await reseal(rotating)
            assert code == 0
            assert summary["resealed"] >= 1
            assert summary["unreadable"] == 0
            resealed = await stored_secret(shop, endpoint["id"])
            associated = uuid.UUID(endpoint["id"]).bytes
            assert SecretBox(old).open(resealed, associated=associated) is None
            assert SecretBox(new).open(resealed, associated=associated) == endpoint["secret"]
            code, summary = await reseal(rotating)
            assert (code, summary["resealed"]) == (0, 0)
            assert summary["current"] >= 1

            # The old key is gone from the settings; the endpoint's secret is unchanged.
            await shop.create()
            async with start_shipping(rotated, issuer, committed=True) as worker:
                assert await deliver(worker) == 1
            [_, second] = await receiver.wait_for(2)
            assert verify(endpoint["secret"], second.headers["parcelpro-signature"], second.body)
        finally:
            await delete_account_rows(shop.database, shop.account_id)


async def test_reseal_goes_through_every_endpoint_in_batches(
    shipping: Shipping, receiver: Receiver
) -> None:
    created = [await register(shipping, receiver.url) for _ in range(5)]
    # One endpoint is in the overlap of a secret rotation: both its secrets move.
    rotated = await rotate(shipping, created[0]["id"])
    assert rotated.status_code == 200
    old_key = shipping.app.state.settings.webhook_secret_key
    new = new_key()
    rotating = SecretBox(new, [old_key])

    report = await reseal_secrets(shipping.database.sessionmaker, rotating, batch_size=2)
    assert (report.resealed, report.current, report.unreadable) == (6, 0, [])
    report = await reseal_secrets(shipping.database.sessionmaker, rotating, batch_size=2)
    assert (report.resealed, report.current, report.unreadable) == (0, 6, [])
    expected = {endpoint["id"]: endpoint["secret"] for endpoint in created}
    expected[created[0]["id"]] = rotated.json()["secret"]
    for endpoint_id, secret in expected.items():
        sealed = await stored_secret(shipping, endpoint_id)
        associated = uuid.UUID(endpoint_id).bytes
        assert SecretBox(new).open(sealed, associated=associated) == secret
        assert SecretBox(old_key).open(sealed, associated=associated) is None
    async with shipping.database.session() as session:
        previous = await session.scalar(
            select(WebhookEndpoint.previous_secret_ciphertext).where(
                WebhookEndpoint.id == uuid.UUID(created[0]["id"])
            )
        )
    assert previous is not None
    associated = uuid.UUID(created[0]["id"]).bytes
    assert SecretBox(new).open(previous, associated=associated) == created[0]["secret"]
