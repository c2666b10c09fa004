"""Fixtures of the shipping_api tests: the app over a rolled-back database, a manual clock, a
local token issuer and a test double of identity."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import stamina
from fastapi import FastAPI
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.app import Overrides
from libs.common.auth import ServiceScope
from libs.common.clock import ManualClock
from libs.common.db import Database, create_engine
from libs.common.driver import DirectStatements
from libs.common.mail import Mailer
from services.shipping_api.app import create_app
from services.shipping_api.models import Shipment, WebhookEndpoint
from services.shipping_api.settings import ShippingSettings
from tests.support.db import rolled_back
from tests.support.shipping_apps import running_shipping
from tests.support.shipping_factories import shipment_body
from tests.support.shipping_identity import IdentityDouble, IdentityOrNetwork
from tests.support.shipping_receiver import Receiver, webhook_receiver
from tests.support.tokens import TokenIssuer, bearer

NOW = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)


@dataclass
class Shipping:
    """One running shipping_api and the people who talk to it."""

    app: FastAPI
    client: httpx.AsyncClient
    database: Database
    clock: ManualClock
    issuer: TokenIssuer
    identity: IdentityDouble
    account_id: uuid.UUID
    headers: dict[str, str]
    """A live API key of ``account_id`` with every scope."""
    test_headers: dict[str, str] = field(default_factory=dict)
    """A ``pp_test_`` key of ``account_id``."""

    def other_account(self, *, mode: str = "live") -> tuple[uuid.UUID, dict[str, str]]:
        account_id = uuid.uuid4()
        self.identity.add(account_id, name="Andere Winkel B.V.")
        return account_id, bearer(self.issuer.api_keys.issue(account_id, mode=mode))

    def staff(
        self, *roles: Any, reason: str | None = "Recipient called about the parcel"
    ) -> dict[str, str]:
        headers = bearer(self.issuer.staff(*roles))
        if reason is not None:
            headers["X-Access-Reason"] = reason
        return headers

    def service(self, scopes: Any = tuple(ServiceScope)) -> dict[str, str]:
        return bearer(self.issuer.service("privacy_api", scopes))

    async def create(self, headers: dict[str, str] | None = None, **changes: Any) -> dict[str, Any]:
        response = await self.client.post(
            "/v1/shipments", json=shipment_body(**changes), headers=headers or self.headers
        )
        assert response.status_code == 201, response.text
        body: dict[str, Any] = response.json()
        return body

    async def stored(self, shipment_id: str) -> Shipment:
        async with self.database.session() as session:
            shipment = await session.scalar(
                select(Shipment).where(Shipment.id == uuid.UUID(shipment_id))
            )
        assert shipment is not None
        return shipment

    def session(self) -> AsyncSession:
        return self.database.session()

    @property
    def settings(self) -> ShippingSettings:
        settings: ShippingSettings = self.app.state.settings
        return settings


def settings_for(base: ShippingSettings, **changes: Any) -> ShippingSettings:
    values: dict[str, Any] = {
        "outbox_worker_enabled": False,
        "purge_in_process": False,
        "webhook_allow_loopback": True,
    }
    values.update(changes)
    return base.model_copy(update=values)


@asynccontextmanager
async def start_shipping(
    settings: ShippingSettings,
    issuer: TokenIssuer,
    *,
    mailer: Mailer | None = None,
    clock: ManualClock | None = None,
    committed: bool = False,
) -> AsyncIterator[Shipping]:
    """``committed``: a real database instead of one rolled-back transaction, for tests whose
    background tasks use the database at the same time as requests (one test connection cannot
    interleave them). Such tests clean up after themselves with :func:`delete_account_rows`."""
    identity = IdentityDouble()
    account_id = uuid.uuid4()
    identity.add(account_id)
    clock = clock or ManualClock(NOW)
    databases = committed_database(settings) if committed else rolled_back(settings)
    async with databases as database:
        overrides = Overrides(
            database=database,
            http_transport=IdentityOrNetwork(identity, settings.identity_url),
            clock=clock,
            authenticator=issuer.authenticator(),
            mailer=mailer,
        )
        async with running_shipping(create_app, settings, overrides) as (app, client):
            yield Shipping(
                app=app,
                client=client,
                database=database,
                clock=clock,
                issuer=issuer,
                identity=identity,
                account_id=account_id,
                headers=bearer(issuer.api_keys.issue(account_id)),
                test_headers=bearer(issuer.api_keys.issue(account_id, mode="test")),
            )


@asynccontextmanager
async def committed_database(settings: ShippingSettings) -> AsyncIterator[Database]:
    database = Database(create_engine(settings.database_url, schema=settings.db_schema))
    try:
        yield database
    finally:
        await database.dispose()


async def delete_account_rows(database: Database, account_id: uuid.UUID) -> None:
    async with database.session() as session:
        for model in (WebhookEndpoint, Shipment):
            await session.execute(delete(model).where(model.account_id == account_id))
        await session.commit()


@pytest.fixture(autouse=True)
def _no_retry_waits() -> Iterator[None]:
    """Calls to identity are retried with backoff; tests need not wait for it."""
    stamina.set_testing(True, attempts=2)
    yield
    stamina.set_testing(False)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A real HTTP server that records the webhook deliveries it gets."""
    with webhook_receiver() as server:
        yield server


@pytest.fixture
async def shipping(
    shipping_settings: ShippingSettings, issuer: TokenIssuer
) -> AsyncIterator[Shipping]:
    async with start_shipping(settings_for(shipping_settings), issuer) as harness:
        yield harness


def record_direct_statements(
    monkeypatch: pytest.MonkeyPatch,
    statement: Any,
    pick: Callable[[Mapping[str, Any], Any], Any],
) -> list[Any]:
    """What ``pick(params, rows)`` makes of every run of ``statement`` through asyncpg directly
    (``DirectStatements.fetch``) that returned rows, in order."""
    picked: list[Any] = []
    fetch = DirectStatements.fetch

    async def recording(self: DirectStatements, sent: Any, params: Any) -> Any:
        rows = await fetch(self, sent, params)
        if rows and sent is statement:
            picked.append(pick(params, rows))
        return rows

    monkeypatch.setattr(DirectStatements, "fetch", recording)
    return picked
