"""``/healthz`` needs nothing; ``/readyz`` needs a reachable, fully migrated database."""

from __future__ import annotations

from pathlib import Path

import pytest

from libs.common.app import Overrides
from libs.common.db import Database, create_engine
from services.identity_api.app import create_app as create_identity
from services.privacy_api.app import create_app as create_privacy
from services.shipping_api.app import create_app as create_shipping
from services.shipping_api.settings import ShippingSettings
from tests.support.apps import running
from tests.support.db import rolled_back

APPS = {"identity": create_identity, "shipping": create_shipping, "privacy": create_privacy}


@pytest.mark.parametrize("service", sorted(APPS))
async def test_migrated_service_is_healthy_and_ready(
    service: str, request: pytest.FixtureRequest
) -> None:
    settings = request.getfixturevalue(f"{service}_settings")
    async with (
        rolled_back(settings) as database,
        running(APPS[service], settings, Overrides(database=database)) as (_, client),
    ):
        health = await client.get("/healthz")
        ready = await client.get("/readyz")
    assert health.status_code == 200
    assert health.json() == {"status": "ok", "service": service}
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "service": service}


async def test_unmigrated_database_is_alive_but_not_ready(tmp_path: Path) -> None:
    settings = ShippingSettings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}",
        request_log_to_db=False,
        environment="test",
    )
    database = Database(create_engine(settings.database_url))
    async with running(create_shipping, settings, Overrides(database=database)) as (_, client):
        assert (await client.get("/healthz")).status_code == 200
        ready = await client.get("/readyz")
    assert ready.status_code == 503
    assert ready.headers["content-type"] == "application/problem+json"
    assert ready.json()["detail"] == "database migrations are not at head"


async def test_unreachable_database_is_alive_but_not_ready() -> None:
    settings = ShippingSettings(
        database_url="postgresql+asyncpg://nobody@127.0.0.1:1/none",
        request_log_to_db=False,
        environment="test",
    )
    async with running(create_shipping, settings, Overrides()) as (_, client):
        assert (await client.get("/healthz")).status_code == 200
        ready = await client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["detail"] == "database unreachable"
