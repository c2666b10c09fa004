"""The support access log (staff reads of shipments) is kept five years, as the register
promises for audit logs, and no longer: the daily ``purge`` deletes older entries."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError
from sqlalchemy import select
from structlog.testing import capture_logs

from libs.common.auth import Role
from libs.common.db import Database, create_engine, uuid7
from services.shipping_api.models import SupportAccess
from services.shipping_api.retention.service import run_retention
from services.shipping_api.settings import ShippingSettings
from tests.shipping.conftest import Shipping

FIVE_YEARS = timedelta(days=1825)


async def read_as_support(shipping: Shipping, shipment: dict[str, object], times: int) -> None:
    for _ in range(times):
        response = await shipping.client.get(
            f"/v1/shipments/{shipment['id']}", headers=shipping.staff(Role.SUPPORT)
        )
        assert response.status_code == 200


async def access_times(shipping: Shipping) -> list[datetime]:
    async with shipping.session() as session:
        return list((await session.scalars(select(SupportAccess.accessed_at))).all())


async def test_support_reads_older_than_five_years_are_deleted_younger_ones_stay(
    shipping: Shipping,
) -> None:
    shipment = await shipping.create(reference="AUDITED-1")
    start = shipping.clock.now()
    await read_as_support(shipping, shipment, 3)
    shipping.clock.advance(timedelta(days=10))
    await read_as_support(shipping, shipment, 2)
    settings = shipping.settings.model_copy(update={"purge_batch_size": 2})

    report = await run_retention(
        shipping.database.sessionmaker, settings, now=start + FIVE_YEARS + timedelta(days=1)
    )

    assert report.support_access_log == 3
    assert await access_times(shipping) == [start + timedelta(days=10)] * 2


async def test_support_reads_younger_than_five_years_are_kept(shipping: Shipping) -> None:
    shipment = await shipping.create(reference="AUDITED-2")
    await read_as_support(shipping, shipment, 2)
    report = await run_retention(
        shipping.database.sessionmaker,
        shipping.settings,
        now=shipping.clock.now() + FIVE_YEARS - timedelta(minutes=1),
    )
    assert report.support_access_log == 0
    assert len(await access_times(shipping)) == 2


def test_purge_command_reports_the_support_access_log_entries_it_deleted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from services.shipping_api.__main__ import main

    url = f"sqlite+aiosqlite:///{tmp_path / 'shipping.db'}"
    monkeypatch.setenv("SHIPPING_DATABASE_URL", url)
    monkeypatch.setenv("ENVIRONMENT", "test")
    assert main(["migrate"]) == 0
    now = datetime(2031, 12, 1, 2, 30, tzinfo=UTC)
    kept = asyncio.run(_seed_reads(url, [now - FIVE_YEARS - timedelta(days=1), now]))[1]
    with capture_logs() as logs:
        assert main(["purge", "--now", now.isoformat()]) == 0
    [report] = [line for line in logs if line["event"] == "retention_purged"]
    assert report["support_access_log"] == 1
    assert asyncio.run(_access_ids(url)) == [kept]


async def _seed_reads(url: str, moments: list[datetime]) -> list[uuid.UUID]:
    """A staff member's reads of an account's shipment list, one at each moment, in order."""
    database = Database(create_engine(url))
    ids = [uuid7() for _ in moments]
    try:
        async with database.session() as session:
            session.add_all(
                SupportAccess(
                    id=access_id,
                    staff_id=uuid.uuid4(),
                    action="list_shipments",
                    account_id=uuid.uuid4(),
                    reason="Recipient called about the parcel",
                    accessed_at=moment,
                )
                for access_id, moment in zip(ids, moments, strict=True)
            )
            await session.commit()
    finally:
        await database.dispose()
    return ids


async def _access_ids(url: str) -> list[uuid.UUID]:
    database = Database(create_engine(url))
    try:
        async with database.session() as session:
            return list((await session.scalars(select(SupportAccess.id))).all())
    finally:
        await database.dispose()


def test_support_access_log_cannot_be_kept_longer_than_the_register_promises() -> None:
    with pytest.raises(ValidationError, match="audit_log_retention_days"):
        ShippingSettings(audit_log_retention_days=1826, environment="test")
