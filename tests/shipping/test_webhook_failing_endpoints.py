"""An endpoint whose deliveries have all failed for SHIPPING_WEBHOOK_DISABLE_AFTER_DAYS is
switched off at its next failure, as the account's own switch-off does (decision 0206)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from services.shipping_api.settings import ShippingSettings
from tests.shipping.conftest import Shipping, settings_for, start_shipping
from tests.shipping.test_webhooks import as_json, deliver, deliveries, pause, redeliver, register
from tests.support.shipping_receiver import Receiver
from tests.support.tokens import TokenIssuer

DISABLE_AFTER = timedelta(days=5)


async def endpoint_of(shipping: Shipping, endpoint_id: str) -> dict[str, Any]:
    response = await shipping.client.get(
        f"/v1/webhook-endpoints/{endpoint_id}", headers=shipping.headers
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def fail_one_event(shipping: Shipping) -> None:
    """A new event whose first attempt fails (the receiver answers 503 throughout)."""
    before = len(await deliveries(shipping))
    await shipping.create()
    assert len(await deliveries(shipping)) == before + 1
    assert await deliver(shipping) == 1


async def retry_until_given_up(shipping: Shipping) -> None:
    """Advance the clock hour by hour until no delivery is queued any more."""
    for _ in range(30):
        if all(d.state != "pending" for d in await deliveries(shipping)):
            return
        shipping.clock.advance(timedelta(hours=1))
        await deliver(shipping)
    raise AssertionError("deliveries still queued after 30 hours")


async def failing_endpoint(shipping: Shipping, receiver: Receiver) -> tuple[str, datetime]:
    """An endpoint (subscribed to shipment.created only) whose first event failed throughout
    its retry window; returns its id and the moment of the first failed attempt."""
    endpoint = await register(shipping, receiver.url, events=["shipment.created"])
    receiver.answer(*([503] * 1000))
    started = shipping.clock.now()
    await fail_one_event(shipping)
    await retry_until_given_up(shipping)
    stored = await endpoint_of(shipping, endpoint["id"])
    assert stored["is_active"] is True
    assert stored["failing_since"] == as_json(started)
    return endpoint["id"], started


async def test_an_endpoint_failing_for_longer_than_the_setting_is_switched_off(
    shipping_settings: ShippingSettings, issuer: TokenIssuer, receiver: Receiver
) -> None:
    # One delivery per run: the test's one database connection takes no concurrent sessions.
    settings = settings_for(shipping_settings, outbox_batch_size=1)
    async with start_shipping(settings, issuer) as shipping:
        await switched_off_after_failing(shipping, receiver)


async def switched_off_after_failing(shipping: Shipping, receiver: Receiver) -> None:
    endpoint_id, started = await failing_endpoint(shipping, receiver)

    # Still within the window: a fresh failure leaves it on, the clock where it was (its
    # retries end a day later, still within it).
    shipping.clock.set(started + DISABLE_AFTER - timedelta(days=2))
    await fail_one_event(shipping)
    within = await endpoint_of(shipping, endpoint_id)
    assert within["is_active"] is True
    assert within["disabled_reason"] is None
    assert within["failing_since"] == as_json(started)
    await retry_until_given_up(shipping)

    # Past it: two events queued, the first failure recorded switches the endpoint off.
    shipping.clock.set(started + DISABLE_AFTER + timedelta(hours=1))
    await shipping.create()
    await shipping.create()
    attempts = len(receiver.received)
    assert await deliver(shipping) == 1
    switched_off_at = shipping.clock.now()
    stored = await endpoint_of(shipping, endpoint_id)
    assert stored["is_active"] is False
    assert stored["disabled_reason"] == "failing"
    assert stored["disabled_at"] == as_json(switched_off_at)
    assert stored["failing_since"] == as_json(started)
    listed = await shipping.client.get("/v1/webhook-endpoints", headers=shipping.headers)
    [row] = listed.json()["data"]
    assert (row["is_active"], row["disabled_reason"]) == (False, "failing")

    # Nothing more goes out: the delivery still queued ends failed without an attempt, and
    # later events are not queued at all.
    assert await deliver(shipping) == 1
    await shipping.create()
    assert await deliver(shipping) == 0
    assert len(receiver.received) == attempts + 1
    stored_deliveries = await deliveries(shipping)
    assert len(stored_deliveries) == 4  # the event after the switch-off has none
    assert all(d.state == "failed" for d in stored_deliveries)
    assert [d.last_error for d in stored_deliveries].count(
        "endpoint switched off after failing"
    ) == 1


async def test_a_success_in_between_starts_the_clock_again(
    shipping: Shipping, receiver: Receiver
) -> None:
    endpoint = await register(shipping, receiver.url, events=["shipment.created"])
    started = shipping.clock.now()
    receiver.answer(503)
    await fail_one_event(shipping)
    assert (await endpoint_of(shipping, endpoint["id"]))["failing_since"] == as_json(started)
    shipping.clock.advance(timedelta(minutes=1))
    assert await deliver(shipping) == 1  # the retry is taken
    assert (await endpoint_of(shipping, endpoint["id"]))["failing_since"] is None

    # Failing again three days on: more than the window after the first failure, but the
    # success in between means it has been failing for three days only.
    receiver.answer(*([503] * 1000))
    shipping.clock.set(started + timedelta(days=3))
    again = shipping.clock.now()
    await fail_one_event(shipping)
    await retry_until_given_up(shipping)
    shipping.clock.set(started + DISABLE_AFTER + timedelta(days=1))
    await fail_one_event(shipping)
    stored = await endpoint_of(shipping, endpoint["id"])
    assert stored["is_active"] is True
    assert stored["disabled_reason"] is None
    assert stored["disabled_at"] is None
    assert stored["failing_since"] == as_json(again)


async def test_switching_it_on_again_clears_the_reason_and_the_clock(
    shipping: Shipping, receiver: Receiver
) -> None:
    endpoint_id, started = await failing_endpoint(shipping, receiver)
    shipping.clock.set(started + DISABLE_AFTER + timedelta(minutes=1))
    await fail_one_event(shipping)
    assert (await endpoint_of(shipping, endpoint_id))["disabled_reason"] == "failing"
    missed = [d for d in await deliveries(shipping) if d.last_attempt_at == shipping.clock.now()]

    receiver.answers.clear()
    response = await shipping.client.patch(
        f"/v1/webhook-endpoints/{endpoint_id}", json={"is_active": True}, headers=shipping.headers
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["is_active"] is True
    assert body["disabled_reason"] is None
    assert body["disabled_at"] is None
    assert body["failing_since"] is None
    assert body == await endpoint_of(shipping, endpoint_id)

    # The event that failed at the switch-off can be sent again now.
    [delivery] = missed
    assert (await redeliver(shipping, endpoint_id, delivery.id)).status_code == 202
    assert await deliver(shipping) == 1
    assert (await endpoint_of(shipping, endpoint_id))["failing_since"] is None

    # A new failure starts a new clock instead of switching it off at once.
    receiver.answer(503)
    await fail_one_event(shipping)
    stored = await endpoint_of(shipping, endpoint_id)
    assert stored["is_active"] is True
    assert stored["failing_since"] == as_json(shipping.clock.now())


async def test_the_account_switching_it_off_gives_no_reason(
    shipping: Shipping, receiver: Receiver
) -> None:
    endpoint = await register(shipping, receiver.url)
    response = await pause(shipping, endpoint["id"])
    assert response.status_code == 200
    body = response.json()
    assert (body["is_active"], body["disabled_reason"], body["disabled_at"]) == (False, None, None)


async def test_the_setting_decides_how_long_an_endpoint_may_fail(
    shipping_settings: ShippingSettings, issuer: TokenIssuer, receiver: Receiver
) -> None:
    settings = settings_for(shipping_settings, webhook_disable_after_days=10)
    async with start_shipping(settings, issuer) as shipping:
        endpoint_id, started = await failing_endpoint(shipping, receiver)
        shipping.clock.set(started + timedelta(days=9))
        await fail_one_event(shipping)
        assert (await endpoint_of(shipping, endpoint_id))["is_active"] is True
        await retry_until_given_up(shipping)
        shipping.clock.set(started + timedelta(days=10, minutes=1))
        await fail_one_event(shipping)
        assert (await endpoint_of(shipping, endpoint_id))["disabled_reason"] == "failing"


@pytest.mark.parametrize("days", [2.9, 31, 0])
def test_the_setting_is_bounded(days: float) -> None:
    with pytest.raises(ValidationError):
        ShippingSettings(environment="development", webhook_disable_after_days=days)


async def test_a_new_url_starts_the_clock_again(shipping: Shipping, receiver: Receiver) -> None:
    endpoint = await register(shipping, receiver.url, events=["shipment.created"])
    receiver.answer(503)
    await fail_one_event(shipping)
    assert (await endpoint_of(shipping, endpoint["id"]))["failing_since"] is not None
    response = await shipping.client.patch(
        f"/v1/webhook-endpoints/{endpoint['id']}",
        json={"url": receiver.url + "/v2"},
        headers=shipping.headers,
    )
    assert response.status_code == 200, response.text
    assert response.json()["failing_since"] is None
