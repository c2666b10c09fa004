"""Idempotency-Key on creates: replay, other body 422, in flight 409, per account, expiry."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import func, select

from libs.common.idempotency import IdempotencyState
from services.shipping_api.models import IdempotencyKey, Shipment
from tests.shipping.conftest import Shipping
from tests.support.shipping_factories import shipment_body


async def count_shipments(shipping: Shipping) -> int:
    async with shipping.session() as session:
        return int(await session.scalar(select(func.count()).select_from(Shipment)) or 0)


async def test_replay_returns_the_first_response_and_creates_nothing_new(
    shipping: Shipping,
) -> None:
    headers = {**shipping.headers, "Idempotency-Key": "order-1001-attempt"}
    first = await shipping.client.post("/v1/shipments", json=shipment_body(), headers=headers)
    assert first.status_code == 201
    # Same JSON, other key order and spacing: the same request.
    body = shipment_body()
    reordered = dict(reversed(list(body.items())))
    second = await shipping.client.post("/v1/shipments", json=reordered, headers=headers)
    assert second.status_code == 201
    assert second.json() == first.json()
    assert second.headers["idempotent-replayed"] == "true"
    assert second.headers["location"] == first.headers["location"]
    assert await count_shipments(shipping) == 1


async def test_same_key_with_another_body_is_422(shipping: Shipping) -> None:
    headers = {**shipping.headers, "Idempotency-Key": "k-1"}
    await shipping.client.post("/v1/shipments", json=shipment_body(), headers=headers)
    other = await shipping.client.post(
        "/v1/shipments", json=shipment_body(reference="OTHER"), headers=headers
    )
    assert other.status_code == 422
    assert other.json()["errors"][0]["field"] == "Idempotency-Key"
    assert await count_shipments(shipping) == 1


async def test_other_body_under_a_busy_key_is_422(shipping: Shipping) -> None:
    now = shipping.clock.now()
    async with shipping.session() as session:
        session.add(
            IdempotencyKey(
                scope=str(shipping.account_id),
                key="busy",
                fingerprint="0" * 64,
                state=IdempotencyState.IN_FLIGHT.value,
                locked_until=now + timedelta(seconds=30),
                created_at=now,
                expires_at=now + timedelta(hours=24),
            )
        )
        await session.commit()
    response = await shipping.client.post(
        "/v1/shipments",
        json=shipment_body(),
        headers={**shipping.headers, "Idempotency-Key": "busy"},
    )
    # A different body under a key is a client error whatever the first request's state.
    assert response.status_code == 422


async def test_same_request_while_the_first_is_in_flight_is_409(shipping: Shipping) -> None:
    from libs.common.idempotency import request_fingerprint

    now = shipping.clock.now()
    body = shipment_body()
    import orjson

    fingerprint = request_fingerprint("POST", "/v1/shipments", orjson.dumps(body))
    async with shipping.session() as session:
        session.add(
            IdempotencyKey(
                scope=str(shipping.account_id),
                key="busy",
                fingerprint=fingerprint,
                state=IdempotencyState.IN_FLIGHT.value,
                locked_until=now + timedelta(seconds=30),
                created_at=now,
                expires_at=now + timedelta(hours=24),
            )
        )
        await session.commit()
    headers = {**shipping.headers, "Idempotency-Key": "busy"}
    response = await shipping.client.post("/v1/shipments", json=body, headers=headers)
    assert response.status_code == 409
    assert response.headers["retry-after"] == "1"
    # Once the first request's lock has lapsed (it died), a retry takes over.
    shipping.clock.advance(timedelta(minutes=2))
    retry = await shipping.client.post("/v1/shipments", json=body, headers=headers)
    assert retry.status_code == 201
    assert await count_shipments(shipping) == 1


async def test_keys_are_scoped_per_account(shipping: Shipping) -> None:
    _, other = shipping.other_account()
    key = {"Idempotency-Key": "shared-key"}
    mine = await shipping.client.post(
        "/v1/shipments", json=shipment_body(), headers={**shipping.headers, **key}
    )
    theirs = await shipping.client.post(
        "/v1/shipments", json=shipment_body(), headers={**other, **key}
    )
    assert mine.status_code == theirs.status_code == 201
    assert mine.json()["id"] != theirs.json()["id"]


async def test_expired_key_runs_the_request_again(shipping: Shipping) -> None:
    headers = {**shipping.headers, "Idempotency-Key": "old"}
    first = await shipping.client.post("/v1/shipments", json=shipment_body(), headers=headers)
    shipping.clock.advance(timedelta(hours=25))
    second = await shipping.client.post("/v1/shipments", json=shipment_body(), headers=headers)
    assert second.status_code == 201
    assert second.json()["id"] != first.json()["id"]


async def test_failed_request_frees_the_key(shipping: Shipping) -> None:
    headers = {**shipping.headers, "Idempotency-Key": "retry-me"}
    bad = await shipping.client.post(
        "/v1/shipments",
        json=shipment_body(carrier="ups", service="evening"),
        headers=headers,
    )
    assert bad.status_code == 422
    async with shipping.session() as session:
        assert await session.scalar(select(func.count()).select_from(IdempotencyKey)) == 0


async def test_malformed_key_is_422(shipping: Shipping) -> None:
    response = await shipping.client.post(
        "/v1/shipments",
        json=shipment_body(),
        headers={**shipping.headers, "Idempotency-Key": "x" * 300},
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "Idempotency-Key"


async def test_bulk_is_idempotent_too(shipping: Shipping) -> None:
    headers = {**shipping.headers, "Idempotency-Key": str(uuid.uuid4())}
    payload = {"shipments": [shipment_body(reference=f"B-{i}") for i in range(3)]}
    first = await shipping.client.post("/v1/shipments/bulk", json=payload, headers=headers)
    second = await shipping.client.post("/v1/shipments/bulk", json=payload, headers=headers)
    assert first.status_code == second.status_code == 200
    assert first.json() == second.json()
    assert await count_shipments(shipping) == 3
