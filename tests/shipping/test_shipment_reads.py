"""``GET /v1/shipments/{id}``: the document, read directly on PostgreSQL and routed elsewhere.

On PostgreSQL an account holder's read is answered before routing from one asyncpg statement
(``shipments.fastpath``); everything the shortcut leaves alone still reaches the route. Both
must send the same document, the one ``ShipmentRead`` describes.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import asyncpg
import pytest
from sqlalchemy import update

from libs.common.auth import Role, Scope
from libs.common.driver import DirectStatements
from services.shipping_api.models import Shipment
from services.shipping_api.shipments import fastpath, service
from services.shipping_api.shipments.endpoints import shipment_read
from services.shipping_api.shipments.schemas import ShipmentRead
from tests.shipping.conftest import (
    Shipping,
    delete_account_rows,
    record_direct_statements,
    settings_for,
    start_shipping,
)
from tests.support.db import on_postgres
from tests.support.tokens import TokenIssuer, bearer


@pytest.fixture
def direct_reads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The row counts of the direct reads that found the shipment."""
    return record_direct_statements(monkeypatch, fastpath.STATEMENT, lambda _, rows: len(rows))


async def expected_document(shipping: Shipping, shipment_id: str) -> dict[str, Any]:
    """What the ORM and the Pydantic model make of the stored shipment."""
    async with shipping.session() as session:
        stored, parcels = await service.get_shipment(
            session, uuid.UUID(shipment_id), shipping.account_id
        )
    document: dict[str, Any] = shipment_read(stored, parcels).model_dump(mode="json")
    return document


async def test_the_document_is_the_one_shipment_read_describes(
    shipping: Shipping, direct_reads: list[int]
) -> None:
    created = await shipping.create(parcels=3, reference="ORDER-1")
    response = await shipping.client.get(f"/v1/shipments/{created['id']}", headers=shipping.headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body == await expected_document(shipping, created["id"])
    assert ShipmentRead.model_validate_json(response.content).model_dump(mode="json") == body
    assert [p["sequence"] for p in body["parcels"]] == [1, 2, 3]
    assert body["created_at"].endswith("Z")
    # Read without the ORM on PostgreSQL: one row per parcel.
    assert direct_reads == ([3] if on_postgres() else [])


async def test_an_erased_recipient_reads_as_null(shipping: Shipping) -> None:
    created = await shipping.create()
    async with shipping.session() as session:
        await session.execute(
            update(Shipment)
            .where(Shipment.id == uuid.UUID(created["id"]))
            .values(
                recipient_name=None,
                recipient_street=None,
                recipient_erased_at=shipping.clock.now() + timedelta(days=1),
            )
        )
        await session.commit()
    response = await shipping.client.get(f"/v1/shipments/{created['id']}", headers=shipping.headers)
    assert response.status_code == 200
    assert response.json()["recipient"] is None
    assert response.json()["tracking_code"] == created["tracking_code"]


async def test_another_accounts_shipment_is_not_found(
    shipping: Shipping, direct_reads: list[int]
) -> None:
    created = await shipping.create()
    _, other = shipping.other_account()
    response = await shipping.client.get(f"/v1/shipments/{created['id']}", headers=other)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert direct_reads == []


async def test_reading_needs_the_read_scope(shipping: Shipping) -> None:
    created = await shipping.create()
    key = shipping.issuer.api_keys.issue(shipping.account_id, scopes=[Scope.SHIPMENTS_WRITE.value])
    response = await shipping.client.get(f"/v1/shipments/{created['id']}", headers=bearer(key))
    assert response.status_code == 403
    assert "shipments:read" in response.json()["detail"]


async def test_without_credentials_it_is_401(shipping: Shipping) -> None:
    created = await shipping.create()
    response = await shipping.client.get(f"/v1/shipments/{created['id']}")
    assert response.status_code == 401


@pytest.mark.parametrize(
    "spelling", [str.upper, lambda text: text.replace("-", "")], ids=["upper", "unhyphenated"]
)
async def test_other_spellings_of_the_id_read_the_same_shipment(
    shipping: Shipping, spelling: Any
) -> None:
    created = await shipping.create()
    response = await shipping.client.get(
        f"/v1/shipments/{spelling(created['id'])}", headers=shipping.headers
    )
    assert response.status_code == 200
    assert response.json()["id"] == created["id"]


async def test_an_id_that_is_no_uuid_is_422_naming_it(shipping: Shipping) -> None:
    response = await shipping.client.get(
        "/v1/shipments/0192f0e4-zzzz-7000-8000-000000000000", headers=shipping.headers
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "shipment_id"


async def test_staff_reads_are_still_audited_not_shortcut(
    shipping: Shipping, direct_reads: list[int]
) -> None:
    created = await shipping.create()
    response = await shipping.client.get(
        f"/v1/shipments/{created['id']}", headers=shipping.staff(Role.SUPPORT)
    )
    assert response.status_code == 200
    assert response.json() == await expected_document(shipping, created["id"])
    assert direct_reads == []


async def test_an_account_holder_sending_an_overlong_reason_is_validated_as_routed(
    shipping: Shipping,
) -> None:
    created = await shipping.create()
    response = await shipping.client.get(
        f"/v1/shipments/{created['id']}",
        headers={**shipping.headers, "X-Access-Reason": "x" * 501},
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "X-Access-Reason"


@pytest.mark.skipif(not on_postgres(), reason="the asyncpg pool exists on PostgreSQL only")
async def test_a_committed_shipment_is_read_through_the_pool(
    shipping_settings: Any, issuer: TokenIssuer, direct_reads: list[int]
) -> None:
    settings = settings_for(shipping_settings)
    async with start_shipping(settings, issuer, committed=True) as shipping:
        try:
            created = await shipping.create(parcels=2)
            for _ in range(3):
                response = await shipping.client.get(
                    f"/v1/shipments/{created['id']}", headers=shipping.headers
                )
                assert response.status_code == 200
                assert response.json() == await expected_document(shipping, created["id"])
            assert direct_reads == [2, 2, 2]
            # Reads one after another share one connection, kept open between them.
            assert shipping.app.state.direct.size == 1
        finally:
            await delete_account_rows(shipping.database, shipping.account_id)


@pytest.mark.parametrize(
    "failure",
    [
        ConnectionResetError("connection reset by peer"),
        asyncpg.InternalClientError("cannot switch to state 12; another operation is in progress"),
        asyncpg.CannotConnectNowError("the database system is shutting down"),
    ],
    ids=["reset", "stale-connection", "shutting-down"],
)
async def test_a_failed_direct_read_is_answered_by_the_route(
    shipping: Shipping, monkeypatch: pytest.MonkeyPatch, failure: Exception
) -> None:
    """A database restart breaks direct reads first; the route then answers as it would."""
    created = await shipping.create()

    async def failing(self: DirectStatements, statement: Any, params: Any) -> Any:
        raise failure

    monkeypatch.setattr(DirectStatements, "fetch", failing)
    response = await shipping.client.get(f"/v1/shipments/{created['id']}", headers=shipping.headers)
    assert response.status_code == 200
    assert response.json() == await expected_document(shipping, created["id"])
