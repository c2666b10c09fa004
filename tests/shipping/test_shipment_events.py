"""``GET /v1/shipments/{id}/events``: the status history, a cursor list like every other list."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import event, select
from sqlalchemy.engine import Engine

from libs.common.auth import Role
from libs.common.pagination import PageParams, encode_cursor
from services.shipping_api.models import SupportAccess
from services.shipping_api.shipments.events import page_events
from tests.shipping.conftest import Shipping
from tests.support.shipping_carriers import carrier_event, push_event

HISTORY = [
    ("handed_to_carrier", "2026-11-25T10:00:00Z"),
    ("in_transit", "2026-11-25T10:00:00Z"),
    ("in_transit", "2026-11-25T11:00:00Z"),
    ("out_for_delivery", "2026-11-25T12:00:00Z"),
    ("delivered", "2026-11-25T13:00:00Z"),
]


async def delivered_shipment(shipping: Shipping) -> dict[str, Any]:
    body = await shipping.create()
    for index, (status, occurred_at) in enumerate(HISTORY):
        response = await push_event(
            shipping.client,
            "postnl",
            carrier_event(body["tracking_code"], status, f"e{index}", occurred_at=occurred_at),
        )
        assert response.status_code == 200, response.text
    return body


async def test_events_are_a_page_with_next_cursor(shipping: Shipping) -> None:
    body = await shipping.create()
    response = await shipping.client.get(
        f"/v1/shipments/{body['id']}/events", headers=shipping.headers
    )
    assert response.status_code == 200
    page = response.json()
    assert page["next_cursor"] is None
    assert [e["status"] for e in page["data"]] == ["created"]


async def test_events_page_oldest_first_through_the_cursor(shipping: Shipping) -> None:
    body = await delivered_shipment(shipping)
    path = f"/v1/shipments/{body['id']}/events"
    whole = (await shipping.client.get(path, headers=shipping.headers)).json()
    assert whole["next_cursor"] is None
    assert [e["status"] for e in whole["data"]] == ["created"] + [s for s, _ in HISTORY]

    pages: list[list[dict[str, Any]]] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 2} if cursor is None else {"limit": 2, "cursor": cursor}
        response = await shipping.client.get(path, params=params, headers=shipping.headers)
        assert response.status_code == 200, response.text
        page = response.json()
        pages.append(page["data"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert [len(p) for p in pages] == [2, 2, 2]
    assert [e for p in pages for e in p] == whole["data"]


async def test_events_limit_over_200_is_422_naming_limit(shipping: Shipping) -> None:
    body = await shipping.create()
    response = await shipping.client.get(
        f"/v1/shipments/{body['id']}/events", params={"limit": 201}, headers=shipping.headers
    )
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert [e["field"] for e in response.json()["errors"]] == ["limit"]


@pytest.mark.parametrize(
    "cursor",
    [
        "bm90LWpzb24",  # base64 of "not-json"
        encode_cursor({"id": str(uuid.uuid4())}),  # a cursor of another list
        encode_cursor({"occurred_at": "2026-11-25T10:00:00", "id": str(uuid.uuid4())}),
        encode_cursor({"occurred_at": "yesterday", "id": "nope"}),
    ],
)
async def test_events_bad_cursor_is_422_naming_cursor(shipping: Shipping, cursor: str) -> None:
    body = await shipping.create()
    response = await shipping.client.get(
        f"/v1/shipments/{body['id']}/events", params={"cursor": cursor}, headers=shipping.headers
    )
    assert response.status_code == 422, response.text
    assert [e["field"] for e in response.json()["errors"]] == ["cursor"]


async def test_events_of_another_account_are_404(shipping: Shipping) -> None:
    body = await shipping.create()
    _, other = shipping.other_account()
    response = await shipping.client.get(
        f"/v1/shipments/{body['id']}/events", params={"limit": 1}, headers=other
    )
    assert response.status_code == 404
    assert "created" not in response.text


async def test_support_reading_events_is_audited_per_page(shipping: Shipping) -> None:
    body = await delivered_shipment(shipping)
    headers = shipping.staff(Role.SUPPORT, reason="Recipient called: parcel late (ticket 78)")
    path = f"/v1/shipments/{body['id']}/events"
    first = await shipping.client.get(path, params={"limit": 4}, headers=headers)
    assert first.status_code == 200
    rest = await shipping.client.get(
        path, params={"limit": 4, "cursor": first.json()["next_cursor"]}, headers=headers
    )
    assert [len(first.json()["data"]), len(rest.json()["data"])] == [4, 2]
    async with shipping.session() as session:
        entries = (await session.scalars(select(SupportAccess))).all()
    assert [e.action for e in entries] == ["read_events", "read_events"]
    assert {e.shipment_id for e in entries} == {uuid.UUID(body["id"])}
    assert {e.account_id for e in entries} == {shipping.account_id}
    assert {e.reason for e in entries} == {"Recipient called: parcel late (ticket 78)"}


async def test_an_event_reported_late_takes_its_place_when_paging(shipping: Shipping) -> None:
    body = await shipping.create()
    shipping.clock.set(datetime(2026, 11, 25, 18, 0, tzinfo=UTC))  # the carrier reports at 18:00
    code = body["tracking_code"]
    for event_id, status, occurred_at in (
        ("a", "handed_to_carrier", "2026-11-25T10:00:00Z"),
        ("b", "in_transit", "2026-11-25T12:00:00Z"),
        ("c", "in_transit", "2026-11-25T11:00:00Z"),  # reported after b
    ):
        response = await push_event(
            shipping.client,
            "postnl",
            carrier_event(code, status, event_id, occurred_at=occurred_at),
        )
        assert response.status_code == 200, response.text
    path = f"/v1/shipments/{body['id']}/events"
    first = (await shipping.client.get(path, params={"limit": 3}, headers=shipping.headers)).json()
    rest = await shipping.client.get(
        path, params={"limit": 3, "cursor": first["next_cursor"]}, headers=shipping.headers
    )
    moments = [e["occurred_at"] for e in first["data"] + rest.json()["data"]]
    assert moments[1:] == ["2026-11-25T10:00:00Z", "2026-11-25T11:00:00Z", "2026-11-25T12:00:00Z"]
    assert rest.json()["next_cursor"] is None


async def test_a_page_of_events_is_read_in_index_order_without_a_sort(shipping: Shipping) -> None:
    """The keyset (occurred_at, id) is the index's order after shipment_id, so a page of a long
    history reads just its rows: no sort of the shipment's whole history, no reading past the
    events before the cursor."""
    body = await delivered_shipment(shipping)
    statements: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if "FROM shipment_events" in statement and "ORDER BY" in statement:
            statements.append((statement, parameters))

    async with shipping.session() as session:
        event.listen(Engine, "before_cursor_execute", record)
        try:
            first, cursor = await page_events(session, uuid.UUID(body["id"]), PageParams(limit=2))
            await page_events(session, uuid.UUID(body["id"]), PageParams(limit=2, cursor=cursor))
        finally:
            event.remove(Engine, "before_cursor_execute", record)
        assert len(first) == 2
        assert len(statements) == 2
        connection = await session.connection()
        is_postgresql = connection.dialect.name == "postgresql"
        if is_postgresql:
            # A handful of rows would be read whole; ask how the index serves the query.
            await connection.exec_driver_sql("SET LOCAL enable_seqscan = off")
            await connection.exec_driver_sql("SET LOCAL enable_bitmapscan = off")
        explain = "EXPLAIN" if is_postgresql else "EXPLAIN QUERY PLAN"
        plans = [
            " / ".join(
                str(row[-1])
                for row in await connection.exec_driver_sql(f"{explain} {statement}", parameters)
            )
            for statement, parameters in statements
        ]
    for plan in plans:
        assert "ix_shipment_events_shipment_id_occurred_at_id" in plan, plan
        assert "Sort" not in plan, plan
        assert "TEMP B-TREE" not in plan, plan
    # The next page starts at the cursor in the index, not after the earlier events.
    seek = "ROW(occurred_at,id)>ROW(" if is_postgresql else "(occurred_at,id)>(?,?)"
    assert seek in plans[1].replace(" ", ""), plans[1]
    assert "Filter" not in plans[1], plans[1]
