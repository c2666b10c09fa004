"""``POST /v1/shipments``: stored with one statement on PostgreSQL, routed elsewhere.

On PostgreSQL an account holder's create without an ``Idempotency-Key`` is stored before
routing, with one statement sent through asyncpg (``shipments.fastpath``); what the shortcut
leaves alone still reaches the route. Both must store the same rows and answer the same
document. On SQLite every create is routed, and the same assertions hold.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy import func, literal_column, select
from sqlalchemy.exc import OperationalError

from libs.common.auth import Role, Scope
from libs.common.driver import DirectStatements, StatementNotSent
from services.shipping_api.models import (
    Parcel,
    Shipment,
    ShipmentEvent,
    SubjectRestriction,
    WebhookDelivery,
    WebhookEndpoint,
)
from services.shipping_api.shipments import fastpath, repository, service
from services.shipping_api.shipments.endpoints import shipment_read
from tests.shipping.conftest import (
    Shipping,
    delete_account_rows,
    record_direct_statements,
    settings_for,
    start_shipping,
)
from tests.support.db import on_postgres
from tests.support.metrics import scrape_direct_writes
from tests.support.shipping_factories import shipment_body
from tests.support.tokens import TokenIssuer, bearer


@pytest.fixture
def direct_creates(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The tracking codes of the shipments stored by the shortcut."""
    return record_direct_statements(
        monkeypatch, fastpath.CREATE, lambda params, _: params["tracking_code"]
    )


async def post(shipping: Shipping, body: dict[str, Any], **headers: str) -> Any:
    return await shipping.client.post(
        "/v1/shipments", json=body, headers={**shipping.headers, **headers}
    )


async def rows_of(shipping: Shipping, shipment_id: str) -> dict[str, Any]:
    key = uuid.UUID(shipment_id)
    async with shipping.session() as session:
        stored, parcels = await service.get_shipment(session, key, shipping.account_id)
        events = (
            await session.scalars(select(ShipmentEvent).where(ShipmentEvent.shipment_id == key))
        ).all()
        deliveries = (
            await session.scalars(select(WebhookDelivery).where(WebhookDelivery.shipment_id == key))
        ).all()
    return {
        "document": shipment_read(stored, parcels).model_dump(mode="json"),
        "shipment": stored,
        "events": [(e.status, e.source, e.description, e.occurred_at) for e in events],
        "deliveries": deliveries,
    }


async def register_endpoint(shipping: Shipping, events: list[str]) -> uuid.UUID:
    response = await shipping.client.post(
        "/v1/webhook-endpoints",
        json={"url": "http://127.0.0.1:9/hooks", "events": events},
        headers=shipping.headers,
    )
    assert response.status_code == 201, response.text
    return uuid.UUID(response.json()["id"])


def without_codes(document: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in document.items() if k not in {"id", "tracking_code"}}


async def test_the_shortcut_stores_and_answers_what_the_route_does(
    shipping: Shipping, direct_creates: list[str]
) -> None:
    subscribed = await register_endpoint(shipping, ["shipment.created"])
    await register_endpoint(shipping, ["shipment.delivered"])
    body = shipment_body(parcels=2, reference="ORDER-7")
    direct = await post(shipping, body)
    routed = await post(shipping, body, **{"Idempotency-Key": "route-this-one"})
    assert direct.status_code == routed.status_code == 201, direct.text
    for response in (direct, routed):
        created = response.json()
        assert response.headers["location"] == f"/v1/shipments/{created['id']}"
        assert response.headers["content-type"] == "application/json"
    # Only the create without a key took the shortcut, and only on PostgreSQL.
    assert direct_creates == ([direct.json()["tracking_code"]] if on_postgres() else [])

    stored_direct = await rows_of(shipping, direct.json()["id"])
    stored_routed = await rows_of(shipping, routed.json()["id"])
    for response, stored in ((direct, stored_direct), (routed, stored_routed)):
        # The answer is the stored shipment, as ShipmentRead renders it.
        assert response.json() == stored["document"]
        assert [p["sequence"] for p in stored["document"]["parcels"]] == [1, 2]
        assert stored["shipment"].is_restricted is False
        assert stored["shipment"].recipient_email_index is not None
        # One delivery, for the endpoint subscribed to the event.
        [delivery] = stored["deliveries"]
        assert delivery.endpoint_id == subscribed
        assert delivery.account_id == shipping.account_id
        assert delivery.state == "pending"
        assert delivery.payload is not None
        assert delivery.payload["id"] == str(delivery.id)
        assert delivery.payload["type"] == "shipment.created"
        assert delivery.payload["data"]["shipment"]["id"] == response.json()["id"]
    assert without_codes(direct.json()) == without_codes(routed.json())
    assert stored_direct["events"] == stored_routed["events"]
    direct_payload = stored_direct["deliveries"][0].payload
    routed_payload = stored_routed["deliveries"][0].payload
    for payload in (direct_payload, routed_payload):
        del payload["id"]
        del payload["data"]["shipment"]["id"]
        del payload["data"]["shipment"]["tracking_code"]
    assert direct_payload == routed_payload
    direct_delivery, routed_delivery = (
        stored_direct["deliveries"][0],
        stored_routed["deliveries"][0],
    )
    assert direct_delivery.give_up_at == routed_delivery.give_up_at
    assert direct_delivery.next_attempt_at == routed_delivery.next_attempt_at
    # Delivery ids are UUIDv7 (time-ordered) whichever way they were made.
    assert direct_delivery.id.version == routed_delivery.id.version == 7


@pytest.mark.parametrize("kind", ["account", "email", "phone"])
async def test_a_restriction_flags_the_new_shipment(shipping: Shipping, kind: str) -> None:
    index = shipping.app.state.blind_index
    values = {
        "account": str(shipping.account_id),
        "email": index.email("jan.jansen@example.nl"),
        "phone": index.phone("+31612345678"),
    }
    async with shipping.session() as session:
        session.add(
            SubjectRestriction(
                kind=kind,
                value=values[kind],
                basis="objection",
                request_id="r-1",
                created_at=shipping.clock.now(),
            )
        )
        await session.commit()
    flagged = await shipping.create()
    other, other_headers = shipping.other_account()
    stranger = await shipping.create(
        headers=other_headers,
        recipient_changes={"email": "piet@example.nl", "phone": "+31687654321"},
    )
    assert (await shipping.stored(flagged["id"])).is_restricted is True
    assert (await shipping.stored(stranger["id"])).is_restricted is False
    assert other != shipping.account_id


async def test_a_taken_tracking_code_is_replaced(
    shipping: Shipping, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = await shipping.create()
    taken = first["tracking_code"]
    fresh = service.new_tracking_code
    handed_out: list[str] = []

    def taken_once() -> str:
        code = taken if not handed_out else fresh()
        handed_out.append(code)
        return code

    monkeypatch.setattr(service, "new_tracking_code", taken_once)
    second = await shipping.create(reference="ORDER-2")
    assert second["tracking_code"] != taken
    assert handed_out[0] == taken
    async with shipping.session() as session:
        count = await session.scalar(select(func.count()).select_from(Shipment))
    assert count == 2


@pytest.mark.skipif(not on_postgres(), reason="the one-statement create exists on PostgreSQL only")
async def test_a_statement_that_fails_stores_nothing_and_the_route_answers(
    shipping: Shipping, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The parcels of the statement fail (their id is taken): neither the shipment nor its
    event is left behind, and the route then stores the shipment once."""
    first = await shipping.create()
    async with shipping.session() as session:
        taken = await session.scalar(
            select(Parcel.id).where(Parcel.shipment_id == uuid.UUID(first["id"]))
        )
    assert taken is not None
    prepare = service.prepare_shipment
    prepared: list[Any] = []

    def with_a_taken_parcel_id(item: Any, context: Any) -> Any:
        ready = prepare(item, context)
        if not prepared:
            ready.parcels[0]["id"] = taken
        prepared.append(ready)
        return ready

    monkeypatch.setattr(service, "prepare_shipment", with_a_taken_parcel_id)
    second = await shipping.create(reference="ORDER-2")
    # The shortcut tried first and failed; the route prepared it anew.
    assert len(prepared) == 2
    async with shipping.session() as session:
        shipments = (await session.scalars(select(Shipment.reference))).all()
        events = await session.scalar(select(func.count()).select_from(ShipmentEvent))
        endpoints = await session.scalar(select(func.count()).select_from(WebhookEndpoint))
    assert sorted(shipments) == ["ORDER-1001", "ORDER-2"]
    assert events == 2
    assert endpoints == 0
    assert second["id"] != first["id"]


@pytest.fixture
def failing_creates(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The shortcut offered on any database, its statement failing as the test says: append
    ``(exception, committed)``; ``committed``: the shipment is stored before the exception is
    raised (PostgreSQL committed it, then the connection was lost before it could answer)."""
    failures: list[Any] = []
    prepared: list[service.PreparedShipment] = []
    parameters = service.direct_create_parameters
    fetch = DirectStatements.fetch

    def recording(item: service.PreparedShipment, context: Any) -> dict[str, Any]:
        prepared.append(item)
        return parameters(item, context)

    async def failing(self: DirectStatements, statement: Any, params: Any) -> Any:
        if statement is not fastpath.CREATE:
            return await fetch(self, statement, params)
        failure, committed = failures.pop(0)
        if committed:
            item = prepared[-1]
            async with self.database.session() as session:
                await repository.insert_shipments(session, [item.row], item.parcels, [item.event])
                await session.commit()
        raise failure

    monkeypatch.setattr(DirectStatements, "available", property(lambda _: True))
    monkeypatch.setattr(service, "direct_create_parameters", recording)
    monkeypatch.setattr(DirectStatements, "fetch", failing)
    return failures


async def stored_shipments(shipping: Shipping) -> list[str]:
    async with shipping.session() as session:
        return list((await session.scalars(select(Shipment.tracking_code))).all())


async def test_a_create_the_shortcut_could_not_send_is_stored_by_the_route(
    shipping: Shipping, failing_creates: list[Any]
) -> None:
    failing_creates.append((StatementNotSent("ConnectionRefusedError"), False))
    created = await shipping.create()
    stored = await rows_of(shipping, created["id"])
    assert created == stored["document"]
    assert await stored_shipments(shipping) == [created["tracking_code"]]


async def database_unavailable_from_the_route(
    shipping: Shipping, monkeypatch: pytest.MonkeyPatch
) -> Any:
    """The route's answer when the database fails mid-request (0650)."""

    async def lost(*_: Any, **__: Any) -> Any:
        raise OperationalError(None, None, ConnectionResetError())

    with monkeypatch.context() as patched:
        patched.setattr(service, "store_shipments", lost)
        return await post(shipping, shipment_body(), **{"Idempotency-Key": "routed"})


@pytest.mark.parametrize("committed", [True, False], ids=["committed", "not-committed"])
@pytest.mark.parametrize(
    "failure",
    [
        ConnectionResetError("connection reset by peer"),
        TimeoutError(),
        asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
        asyncpg.AdminShutdownError("terminating connection due to administrator command"),
    ],
    ids=["reset", "timeout", "closed", "shutdown"],
)
async def test_a_create_lost_after_it_was_sent_is_a_503_and_never_stored_twice(
    shipping: Shipping,
    failing_creates: list[Any],
    monkeypatch: pytest.MonkeyPatch,
    failure: Exception,
    committed: bool,
) -> None:
    subscribed = await register_endpoint(shipping, ["shipment.created"])
    failing_creates.append((failure, committed))
    response = await post(shipping, shipment_body())
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["retry-after"] == "2"
    # The answer the route gives when the database fails mid-request, word for word.
    routed = await database_unavailable_from_the_route(shipping, monkeypatch)
    assert routed.status_code == 503
    assert routed.headers["retry-after"] == response.headers["retry-after"]
    body, routed_body = response.json(), routed.json()
    assert body["request_id"] == response.headers["x-request-id"]
    del body["request_id"], routed_body["request_id"]
    assert body == routed_body
    # Stored once when PostgreSQL committed it, else not at all; never a second time.
    assert len(await stored_shipments(shipping)) == (1 if committed else 0)
    async with shipping.session() as session:
        deliveries = await session.scalar(
            select(func.count())
            .select_from(WebhookDelivery)
            .where(WebhookDelivery.endpoint_id == subscribed)
        )
    assert deliveries == 0  # the simulated commit stores no deliveries; the route added none


async def test_a_create_the_database_refused_goes_to_the_route(
    shipping: Shipping, failing_creates: list[Any]
) -> None:
    """PostgreSQL answered with an error of the statement: it rolled back whole."""
    failing_creates.append((asyncpg.ForeignKeyViolationError("an endpoint went away"), False))
    created = await shipping.create()
    assert await stored_shipments(shipping) == [created["tracking_code"]]


async def test_what_the_shortcut_leaves_reaches_the_route(
    shipping: Shipping, direct_creates: list[str]
) -> None:
    # A body the rules refuse: the route names the field.
    bad = await post(shipping, shipment_body(recipient_changes={"postcode": "nope"}))
    assert bad.status_code == 422
    assert bad.headers["content-type"] == "application/problem+json"
    assert bad.json()["errors"][0]["field"] == "recipient.postcode"
    over_limit = await post(shipping, shipment_body(carrier="ups", service="mailbox"))
    assert over_limit.status_code == 422
    assert over_limit.json()["errors"][0]["field"] == "service"
    not_json = await shipping.client.post(
        "/v1/shipments",
        content=b"{not json",
        headers={**shipping.headers, "Content-Type": "application/json"},
    )
    assert not_json.status_code == 422
    # Keys, staff and credentials without the scope are the route's.
    key = {"Idempotency-Key": "order-1001"}
    once = await post(shipping, shipment_body(), **key)
    again = await post(shipping, shipment_body(), **key)
    assert once.status_code == again.status_code == 201
    assert again.json()["id"] == once.json()["id"]
    assert again.headers["idempotent-replayed"] == "true"
    staff = await shipping.client.post(
        "/v1/shipments", json=shipment_body(), headers=shipping.staff(Role.SUPPORT)
    )
    assert staff.status_code == 403
    reader = bearer(shipping.issuer.api_keys.issue(shipping.account_id, [Scope.SHIPMENTS_READ]))
    assert (
        await shipping.client.post("/v1/shipments", json=shipment_body(), headers=reader)
    ).status_code == 403
    anonymous = await shipping.client.post("/v1/shipments", json=shipment_body())
    assert anonymous.status_code == 401
    # None of them was stored by the shortcut, and only the keyed create was stored at all.
    assert direct_creates == []
    async with shipping.session() as session:
        count = await session.scalar(select(func.count()).select_from(Shipment))
    assert count == 1


async def test_a_sandbox_key_makes_a_sandbox_shipment(
    shipping: Shipping, direct_creates: list[str]
) -> None:
    created = await shipping.create(headers=shipping.test_headers)
    assert created["mode"] == "test"
    assert (await shipping.stored(created["id"])).mode == "test"
    assert len(direct_creates) == (1 if on_postgres() else 0)


async def creates_sent_together(
    shipping: Shipping, bodies: list[dict[str, Any]]
) -> list[httpx.Response]:
    """``bodies`` posted while the only direct connection is taken: every create waits for it,
    and they are sent together once it is free."""
    direct = shipping.app.state.direct
    assert direct.max_size == 1
    await direct._slots.acquire()
    try:
        posts = [asyncio.create_task(post(shipping, body)) for body in bodies]
        for _ in range(1000):  # ten seconds at most
            if len(direct._writes.get(fastpath.CREATE, ())) == len(bodies):
                break
            await asyncio.sleep(0.01)
        else:
            pytest.fail("the creates never waited for the connection")
    finally:
        direct._slots.release()
    return await asyncio.gather(*posts)


async def transactions_of(shipping: Shipping, ids: list[str]) -> int:
    """How many transactions stored these shipments (each row carries its inserting one)."""
    async with shipping.session() as session:
        count = await session.scalar(
            select(func.count(func.distinct(literal_column("xmin::text"))))
            .select_from(Shipment)
            .where(Shipment.id.in_([uuid.UUID(i) for i in ids]))
        )
    return int(count or 0)


@pytest.mark.skipif(not on_postgres(), reason="the one-statement create exists on PostgreSQL only")
async def test_creates_that_arrive_together_are_committed_together(
    shipping_settings: Any, issuer: TokenIssuer
) -> None:
    settings = settings_for(shipping_settings, db_direct_pool_size=1)
    async with start_shipping(settings, issuer, committed=True) as shipping:
        try:
            subscribed = await register_endpoint(shipping, ["shipment.created"])
            await shipping.create(reference="ORDER-ALONE")
            assert await scrape_direct_writes(shipping.client) == (1, 1)
            bodies = [shipment_body(reference=f"ORDER-{n}", parcels=n) for n in (1, 2, 3, 1)]
            responses = await creates_sent_together(shipping, bodies)
            assert [r.status_code for r in responses] == [201] * 4, responses[0].text
            ids = [r.json()["id"] for r in responses]
            assert await transactions_of(shipping, ids) == 1
            # Operators see how many went together: five writes in two round trips.
            assert await scrape_direct_writes(shipping.client) == (5, 2)
            for response, body in zip(responses, bodies, strict=True):
                stored = await rows_of(shipping, response.json()["id"])
                assert response.json() == stored["document"]
                assert stored["document"]["reference"] == body["reference"]
                assert len(stored["document"]["parcels"]) == len(body["parcels"])
                assert len(stored["events"]) == 1
                [delivery] = stored["deliveries"]
                assert delivery.endpoint_id == subscribed
                assert delivery.payload["data"]["shipment"]["id"] == response.json()["id"]
        finally:
            await delete_account_rows(shipping.database, shipping.account_id)


@pytest.mark.skipif(not on_postgres(), reason="the one-statement create exists on PostgreSQL only")
async def test_a_create_refused_in_a_batch_leaves_the_others_stored_once(
    shipping_settings: Any, issuer: TokenIssuer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One create of the batch draws a tracking code already taken: PostgreSQL refuses the
    batch, nothing of it is stored, and each create is sent again on its own (the one with the
    taken code with a new code, as when it is alone)."""
    settings = settings_for(shipping_settings, db_direct_pool_size=1)
    async with start_shipping(settings, issuer, committed=True) as shipping:
        try:
            taken = (await shipping.create(reference="ORDER-FIRST"))["tracking_code"]
            fresh = service.new_tracking_code
            handed_out: list[str] = []

            def taken_for_the_second() -> str:
                code = taken if len(handed_out) == 1 else fresh()
                handed_out.append(code)
                return code

            monkeypatch.setattr(service, "new_tracking_code", taken_for_the_second)
            bodies = [shipment_body(reference=f"ORDER-{n}") for n in range(3)]
            responses = await creates_sent_together(shipping, bodies)
            assert [r.status_code for r in responses] == [201] * 3, responses[1].text
            # The batch's second create drew the taken code (and a new one when sent again).
            assert len(handed_out) == 3
            assert handed_out[1] == taken
            codes = [r.json()["tracking_code"] for r in responses]
            assert taken not in codes
            async with shipping.session() as session:
                stored = (
                    await session.scalars(
                        select(Shipment.reference).where(Shipment.account_id == shipping.account_id)
                    )
                ).all()
            assert sorted(stored) == ["ORDER-0", "ORDER-1", "ORDER-2", "ORDER-FIRST"]
            # Sent again one by one: a transaction each.
            assert await transactions_of(shipping, [r.json()["id"] for r in responses]) == 3
        finally:
            await delete_account_rows(shipping.database, shipping.account_id)
