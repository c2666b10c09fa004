"""privacy_api running in-process against the identity and shipping doubles: settings, an
isolated database (for tests with concurrent workers or restarts), and small helpers."""

from __future__ import annotations

import asyncio
import io
import uuid
import zipfile
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from alembic.config import Config
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from starlette.types import Receive, Scope, Send

from libs.common.app import Overrides
from libs.common.auth import Role
from libs.common.clock import ManualClock
from libs.common.db import Database, create_engine
from libs.common.mail import SmtpMailer
from libs.common.migrations import alembic_config, upgrade
from services.privacy_api.app import MIGRATIONS_DIR, create_app
from services.privacy_api.settings import PrivacySettings
from services.privacy_api.tasks.worker import Worker
from tests.support.db import POSTGRES_URL, drop_schema, on_postgres, rolled_back
from tests.support.privacy_doubles import IDENTITY_URL, SHIPPING_URL, Downstreams
from tests.support.smtp import Inbox
from tests.support.tokens import TokenIssuer, bearer

VERSION_TABLE = f"{PrivacySettings.service_name}_alembic_version"


def privacy_test_settings(base: PrivacySettings, tmp_path: Path, **changes: Any) -> PrivacySettings:
    return base.model_copy(
        update={
            "identity_url": IDENTITY_URL,
            "shipping_url": SHIPPING_URL,
            "export_dir": tmp_path / "exports",
            "var_dir": tmp_path / "var",
            "worker_enabled": False,
            "worker_poll_seconds": 0.02,
            **changes,
        }
    )


@dataclass
class Privacy:
    """A running privacy_api and everything around it."""

    app: FastAPI
    client: httpx.AsyncClient
    issuer: TokenIssuer
    downstreams: Downstreams
    clock: ManualClock
    inbox: Inbox

    @property
    def worker(self) -> Worker:
        worker: Worker = self.app.state.worker
        return worker

    @property
    def settings(self) -> PrivacySettings:
        settings: PrivacySettings = self.app.state.settings
        return settings

    async def drain(self) -> None:
        """Run the worker until nothing is due (tasks, completions, mail)."""
        await self.worker.run_until_idle()

    def officer(self) -> dict[str, str]:
        return bearer(self.issuer.staff(Role.PRIVACY_OFFICER))

    def user(self, account_id: uuid.UUID) -> dict[str, str]:
        return bearer(self.issuer.user(account_id))

    async def request_as_account(self, account_id: uuid.UUID, **body: Any) -> dict[str, Any]:
        response = await self.client.post(
            "/v1/privacy/requests", json=body, headers=self.user(account_id)
        )
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()
        return created

    async def request_by_email(self, email: str, **body: Any) -> tuple[dict[str, Any], str]:
        """Make a request without an account and verify it with the mailed code."""
        before = len(self.inbox.to(email))
        response = await self.client.post("/v1/privacy/requests", json={"email": email, **body})
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()
        token = created["access_token"]
        messages = await self.inbox.wait_for(email, count=before + 1)
        code = mailed_code(messages[-1])
        verified = await self.client.post(
            f"/v1/privacy/requests/{created['id']}/verify",
            json={"code": code},
            headers={"X-Privacy-Request-Token": token},
        )
        assert verified.status_code == 200, verified.text
        result: dict[str, Any] = verified.json()
        return result, token

    async def get_request(
        self, request_id: str, headers: dict[str, str] | None = None
    ) -> dict[str, Any]:
        response = await self.client.get(
            f"/v1/privacy/requests/{request_id}", headers=headers or self.officer()
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body


def mailed_code(message: Any) -> str:
    body = Inbox.body(message)
    line = next(line for line in body.splitlines() if line.startswith("Your code:"))
    return line.split(":", 1)[1].strip()


def zip_members(content: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


@asynccontextmanager
async def running(
    settings: PrivacySettings,
    overrides: Overrides,
    *,
    client_address: tuple[str, int] = ("203.0.113.7", 50000),
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """Like ``tests.support.apps.running``, but each request gets its own copy of the lifespan
    state, as uvicorn gives it: asgi-lifespan hands every request the same dict, so what one
    request stores on ``request.state`` (the authenticated principal) would leak into the next.
    """
    app = create_app(settings, overrides)
    async with LifespanManager(app, startup_timeout=30, shutdown_timeout=30) as manager:
        shared: dict[str, Any] = manager._state

        async def per_request_state(scope: Scope, receive: Receive, send: Send) -> None:
            scope["state"] = dict(shared)
            await app(scope, receive, send)

        transport = httpx.ASGITransport(app=per_request_state, client=client_address)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield app, client


@asynccontextmanager
async def start_privacy(
    settings: PrivacySettings,
    database: Database,
    *,
    issuer: TokenIssuer,
    downstreams: Downstreams,
    clock: ManualClock,
    smtp: tuple[str, Inbox],
    client_address: tuple[str, int] = ("203.0.113.7", 50000),
) -> AsyncIterator[Privacy]:
    url, inbox = smtp
    overrides = Overrides(
        database=database,
        http_transport=downstreams.transport,
        clock=clock,
        mailer=SmtpMailer(url, sender=settings.mail_from),
        authenticator=issuer.authenticator(),
    )
    async with running(settings, overrides, client_address=client_address) as (app, client):
        yield Privacy(app, client, issuer, downstreams, clock, inbox)


@asynccontextmanager
async def privacy_on_rolled_back(
    settings: PrivacySettings,
    *,
    issuer: TokenIssuer,
    downstreams: Downstreams,
    clock: ManualClock,
    smtp: tuple[str, Inbox],
) -> AsyncIterator[Privacy]:
    """``start_privacy`` in a transaction that is rolled back afterwards (the usual test)."""
    async with (
        rolled_back(settings) as database,
        start_privacy(
            settings, database, issuer=issuer, downstreams=downstreams, clock=clock, smtp=smtp
        ) as privacy,
    ):
        yield privacy


@asynccontextmanager
async def migrated_schema(
    tmp_path: Path, *, version_table: str = VERSION_TABLE
) -> AsyncIterator[tuple[str, str | None, Config]]:
    """A privacy schema of its own (on SQLite a file of its own), migrated to head and dropped
    afterwards: its URL, its schema and its Alembic config, for up- and downgrades."""
    schema: str | None
    if on_postgres():
        url, schema = POSTGRES_URL, f"privacy_t{uuid.uuid4().hex[:10]}"
    else:
        url, schema = f"sqlite+aiosqlite:///{(tmp_path / 'privacy.db').as_posix()}", None
    config = alembic_config(
        MIGRATIONS_DIR, database_url=url, schema=schema, version_table=version_table
    )
    await asyncio.to_thread(upgrade, config)
    try:
        yield url, schema, config
    finally:
        if schema is not None:
            await drop_schema(url, schema)


@asynccontextmanager
async def isolated_databases(
    base: PrivacySettings, tmp_path: Path
) -> AsyncIterator[Callable[[], Database]]:
    """A freshly migrated privacy schema of its own (committed, not rolled back), for tests
    where several workers or apps work on one database at once; yields a Database factory."""
    made: list[Database] = []
    async with migrated_schema(tmp_path, version_table=base.version_table) as (url, schema, _):

        def make() -> Database:
            database = Database(create_engine(url, schema=schema, pool_size=5))
            made.append(database)
            return database

        try:
            yield make
        finally:
            for database in made:
                await database.dispose()
