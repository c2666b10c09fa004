"""Retention: recipient data kept at least three months after a final status, then erased; a
shipment abandoned before one loses it six months after its last status change."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError
from sqlalchemy import func, select

from libs.common.db import Database, create_engine, uuid7
from services.shipping_api.models import IdempotencyKey, Shipment, ShipmentEvent
from services.shipping_api.recipients.erasure import erase_shipments
from services.shipping_api.retention.service import purge_expired_recipients, run_retention
from services.shipping_api.settings import ShippingSettings
from services.shipping_api.shipments.tracking_codes import new_tracking_code
from tests.shipping.conftest import (
    Shipping,
    delete_account_rows,
    settings_for,
    start_shipping,
)
from tests.support.db import on_postgres
from tests.support.shipping_carriers import carrier_event, push_event
from tests.support.shipping_factories import shipment_body
from tests.support.tokens import TokenIssuer


async def deliver(shipping: Shipping, shipment: dict[str, object]) -> None:
    code = str(shipment["tracking_code"])
    for status in ("handed_to_carrier", "out_for_delivery", "delivered"):
        # The carrier scans now: final_at, where retention starts, is the scan's time.
        event = carrier_event(
            code, status, f"{code}-{status}", occurred_at=shipping.clock.now().isoformat()
        )
        response = await push_event(shipping.client, "postnl", event)
        assert response.status_code == 200


async def delivered(shipping: Shipping, prefix: str, count: int) -> list[dict[str, object]]:
    """``count`` shipments with references ``<prefix>-0`` ..., each delivered."""
    shipments = [await shipping.create(reference=f"{prefix}-{i}") for i in range(count)]
    for shipment in shipments:
        await deliver(shipping, shipment)
    return shipments


async def purge(shipping: Shipping, batch_size: int = 1000) -> int:
    report = await purge_expired_recipients(
        shipping.database.sessionmaker,
        now=shipping.clock.now(),
        retention_days=shipping.settings.recipient_retention_days,
        batch_size=batch_size,
    )
    return report.shipments


def test_retention_below_three_months_is_refused_at_start() -> None:
    with pytest.raises(ValidationError, match="RECIPIENT_RETENTION_DAYS must be at least 92"):
        ShippingSettings(recipient_retention_days=91, environment="test")
    assert ShippingSettings(recipient_retention_days=120, environment="test")


async def test_purge_erases_exactly_the_expired_recipients(shipping: Shipping) -> None:
    old = await shipping.create(reference="OLD-1")
    await deliver(shipping, old)
    shipping.clock.advance(timedelta(days=10))
    recent = await shipping.create(reference="RECENT-1")
    await deliver(shipping, recent)
    open_shipment = await shipping.create(reference="OPEN-1")

    shipping.clock.advance(timedelta(days=85))  # old: 95 days final, recent: 85 days
    assert await purge(shipping) == 1

    erased = await shipping.stored(old["id"])
    assert erased.recipient_name is None
    assert erased.recipient_street is None
    assert erased.recipient_email is None
    assert erased.recipient_phone is None
    assert erased.recipient_email_index is None
    assert erased.reference is None
    assert erased.recipient_erased_at == shipping.clock.now()
    # Counts stay: status, dates, postcode area, country, price, tracking code.
    assert erased.status == "delivered"
    assert erased.postcode_area == "3191"
    assert erased.country_code == "NL"
    assert erased.price_cents == old["price"]["amount_cents"]  # type: ignore[index]
    assert erased.tracking_code == old["tracking_code"]
    async with shipping.session() as session:
        cities = (
            await session.scalars(
                select(ShipmentEvent.city).where(
                    ShipmentEvent.shipment_id == uuid.UUID(str(old["id"]))
                )
            )
        ).all()
    assert set(cities) == {None}

    for kept in (recent, open_shipment):
        assert (await shipping.stored(str(kept["id"]))).recipient_name == "Jan Jansen"

    api = await shipping.client.get(f"/v1/shipments/{old['id']}", headers=shipping.headers)
    assert api.json()["recipient"] is None
    assert api.json()["status"] == "delivered"


async def test_purge_is_idempotent_and_works_in_batches(shipping: Shipping) -> None:
    await delivered(shipping, "B", 5)
    shipping.clock.advance(timedelta(days=91))
    report = await purge_expired_recipients(
        shipping.database.sessionmaker,
        now=shipping.clock.now(),
        retention_days=90,
        batch_size=2,
    )
    assert report.shipments == 5
    assert report.batches == 3
    assert await purge(shipping) == 0
    async with shipping.session() as session:
        remaining = await session.scalar(
            select(func.count()).select_from(Shipment).where(Shipment.recipient_name.is_not(None))
        )
    assert remaining == 0


@pytest.mark.skipif(
    not on_postgres(), reason="SQLite has one writer: the purge always uses one session there"
)
async def test_sessions_side_by_side_erase_each_due_recipient_once(
    shipping_settings: ShippingSettings, issuer: TokenIssuer
) -> None:
    # Sessions side by side need connections of their own: a committed database.
    async with start_shipping(settings_for(shipping_settings), issuer, committed=True) as shipping:
        try:
            due = await delivered(shipping, "DUE", 7)
            shipping.clock.advance(timedelta(days=60))
            kept = await shipping.create(reference="KEPT-1")
            await deliver(shipping, kept)
            shipping.clock.advance(timedelta(days=31))

            report = await purge_expired_recipients(
                shipping.database.sessionmaker,
                now=shipping.clock.now(),
                retention_days=90,
                batch_size=2,
                concurrency=3,
            )

            assert report.shipments == 7
            assert report.batches == 4
            # Every status event of an erased shipment lost its place name, once.
            assert report.erased["shipment_events"] == 7 * 4
            for shipment in due:
                assert (await shipping.stored(str(shipment["id"]))).recipient_name is None
            assert (await shipping.stored(str(kept["id"]))).recipient_name == "Jan Jansen"
            assert await purge(shipping) == 0
        finally:
            await delete_account_rows(shipping.database, shipping.account_id)


async def test_purge_drops_stored_answers_and_leaves_earlier_erasures_alone(
    shipping: Shipping,
) -> None:
    keyed = await shipping.client.post(
        "/v1/shipments",
        json=shipment_body(reference="KEYED-1"),
        headers={**shipping.headers, "Idempotency-Key": "order-1"},
    )
    assert keyed.status_code == 201
    already = await shipping.create(reference="ERASED-1")
    for shipment in (keyed.json(), already):
        await deliver(shipping, shipment)
    shipping.clock.advance(timedelta(days=50))
    erased_at = shipping.clock.now()
    async with shipping.session() as session:
        await erase_shipments(session, [uuid.UUID(str(already["id"]))], now=erased_at)
        await session.commit()
    shipping.clock.advance(timedelta(days=41))

    report = await purge_expired_recipients(
        shipping.database.sessionmaker, now=shipping.clock.now(), retention_days=90
    )

    assert report.shipments == 1
    assert report.erased["idempotency_keys"] == 1
    assert (await shipping.stored(str(already["id"]))).recipient_erased_at == erased_at
    async with shipping.session() as session:
        assert await session.scalar(select(func.count()).select_from(IdempotencyKey)) == 0


async def test_longer_configured_retention_keeps_data_longer(shipping: Shipping) -> None:
    shipment = await shipping.create()
    await deliver(shipping, shipment)
    shipping.clock.advance(timedelta(days=100))
    settings = shipping.settings.model_copy(update={"recipient_retention_days": 180})
    report = await run_retention(shipping.database.sessionmaker, settings, now=shipping.clock.now())
    assert report.shipments == 0
    shipping.clock.advance(timedelta(days=81))
    report = await run_retention(shipping.database.sessionmaker, settings, now=shipping.clock.now())
    assert report.shipments == 1


def test_purge_command_erases_expired_recipients_in_a_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from services.shipping_api.__main__ import main

    url = f"sqlite+aiosqlite:///{tmp_path / 'shipping.db'}"
    monkeypatch.setenv("SHIPPING_DATABASE_URL", url)
    monkeypatch.setenv("ENVIRONMENT", "test")
    monkeypatch.setattr("sys.argv", ["python -m services.shipping_api", "migrate"])
    assert main() == 0
    delivered_at = datetime(2026, 11, 1, tzinfo=UTC)
    expired, kept = asyncio.run(_seed(url, delivered_at))
    monkeypatch.setattr(
        "sys.argv", ["python -m services.shipping_api", "purge", "--now", "2027-02-01T00:00:00Z"]
    )
    assert main() == 0
    names = asyncio.run(_names(url))
    assert names == {expired: None, kept: "Piet Peters"}


async def _seed(url: str, delivered_at: datetime) -> tuple[uuid.UUID, uuid.UUID]:
    database = Database(create_engine(url))
    ids = []
    try:
        async with database.session() as session:
            for name, final_at in (
                ("Jan Jansen", delivered_at),
                ("Piet Peters", delivered_at + timedelta(days=10)),
            ):
                shipment_id = uuid7()
                ids.append(shipment_id)
                session.add(
                    Shipment(
                        id=shipment_id,
                        account_id=uuid.uuid4(),
                        mode="live",
                        carrier="postnl",
                        service="standard",
                        status="delivered",
                        tracking_code=new_tracking_code(),
                        parcel_count=1,
                        price_cents=495,
                        currency="EUR",
                        recipient_name=name,
                        country_code="NL",
                        postcode_area="3191",
                        created_at=final_at,
                        updated_at=final_at,
                        status_changed_at=final_at,
                        final_at=final_at,
                    )
                )
            await session.commit()
    finally:
        await database.dispose()
    return ids[0], ids[1]


async def _names(url: str) -> dict[uuid.UUID, str | None]:
    database = Database(create_engine(url))
    try:
        async with database.session() as session:
            rows = (await session.execute(select(Shipment.id, Shipment.recipient_name))).all()
    finally:
        await database.dispose()
    return {row[0]: row[1] for row in rows}


def test_deliver_outbox_command_runs_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from services.shipping_api.__main__ import main

    monkeypatch.setenv("SHIPPING_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'out.db'}")
    monkeypatch.setenv("ENVIRONMENT", "test")
    monkeypatch.setenv("VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setattr("sys.argv", ["python -m services.shipping_api", "migrate"])
    assert main() == 0
    monkeypatch.setattr("sys.argv", ["python -m services.shipping_api", "deliver-outbox", "--once"])
    assert main() == 0


async def test_abandoned_shipments_lose_their_recipient_after_six_months_without_change(
    shipping: Shipping,
) -> None:
    abandoned = await shipping.create(reference="NEVER-SENT")
    stalled = await shipping.create(reference="LOST-IN-TRANSIT")
    response = await push_event(
        shipping.client,
        "postnl",
        carrier_event(
            str(stalled["tracking_code"]),
            "handed_to_carrier",
            "stalled-1",
            occurred_at=shipping.clock.now().isoformat(),
        ),
    )
    assert response.status_code == 200
    finished = await shipping.create(reference="DELIVERED")
    await deliver(shipping, finished)
    shipping.clock.advance(timedelta(days=100))
    moved = await shipping.create(reference="SENT-LATER")
    shipping.clock.advance(timedelta(days=79))
    await push_event(
        shipping.client,
        "postnl",
        carrier_event(
            str(moved["tracking_code"]),
            "handed_to_carrier",
            "moved-1",
            occurred_at=shipping.clock.now().isoformat(),
        ),
    )
    recent = await shipping.create(reference="TODAY")
    shipping.clock.advance(timedelta(days=2))  # the first three: 181 days without a change

    report = await run_retention(
        shipping.database.sessionmaker, shipping.settings, now=shipping.clock.now()
    )

    assert report.shipments == 3
    assert report.abandoned_shipments == 2
    for gone in (abandoned, stalled, finished):
        stored = await shipping.stored(str(gone["id"]))
        assert stored.recipient_name is None
        assert stored.recipient_email is None
        assert stored.reference is None
    assert (await shipping.stored(str(abandoned["id"]))).status == "created"
    for kept in (moved, recent):
        assert (await shipping.stored(str(kept["id"]))).recipient_name == "Jan Jansen"
    api = await shipping.client.get(f"/v1/shipments/{abandoned['id']}", headers=shipping.headers)
    assert api.json()["recipient"] is None
    assert api.json()["status"] == "created"


async def test_abandoned_shipment_keeps_its_recipient_as_long_as_a_final_one_would(
    shipping: Shipping,
) -> None:
    shipment = await shipping.create(reference="NEVER-SENT")
    settings = shipping.settings.model_copy(update={"recipient_retention_days": 365})
    shipping.clock.advance(timedelta(days=200))
    report = await run_retention(shipping.database.sessionmaker, settings, now=shipping.clock.now())
    assert report.shipments == 0
    assert (await shipping.stored(str(shipment["id"]))).recipient_name == "Jan Jansen"
    shipping.clock.advance(timedelta(days=166))
    report = await run_retention(shipping.database.sessionmaker, settings, now=shipping.clock.now())
    assert report.abandoned_shipments == 1


def test_abandonment_below_three_months_is_refused() -> None:
    with pytest.raises(ValidationError, match="RECIPIENT_ABANDONED_AFTER_DAYS must be at least"):
        ShippingSettings(recipient_abandoned_after_days=30, environment="test")
