"""The whole flow on a real SQLite file, where every session has its own connection and
transactions take the write lock: what the rolled-back test database cannot show (a second
session waiting for the request's own lock), and the mail worker running in the background."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager

from libs.common.app import Overrides
from libs.common.mail import SmtpMailer
from services.identity_api.app import MIGRATIONS_DIR, create_app
from services.identity_api.settings import IdentitySettings
from tests.support.db import migrate_fresh
from tests.support.identity_app import PASSWORD, account_body, bearer
from tests.support.smtp import Inbox


@pytest.fixture
def file_settings(settings: IdentitySettings, tmp_path: Path) -> IdentitySettings:
    on_file = settings.model_copy(
        update={
            "database_url": f"sqlite+aiosqlite:///{(tmp_path / 'identity.db').as_posix()}",
            "mail_outbox_worker": True,
            "mail_poll_seconds": 0.05,
        }
    )
    migrate_fresh(on_file, MIGRATIONS_DIR)
    return on_file


@pytest.fixture
async def client(
    file_settings: IdentitySettings, smtp: tuple[str, Inbox]
) -> AsyncIterator[httpx.AsyncClient]:
    mailer = SmtpMailer(smtp[0], sender=file_settings.mail_from)
    app = create_app(file_settings, Overrides(mailer=mailer))
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app, client=("203.0.113.9", 5000))
        async with httpx.AsyncClient(transport=transport, base_url="http://identity") as http:
            yield http


async def test_register_login_keys_and_mail_on_separate_connections(
    client: httpx.AsyncClient, smtp: tuple[str, Inbox]
) -> None:
    body = account_body()
    assert (await client.post("/v1/auth/register", json=body)).status_code == 201
    token = await client.post(
        "/v1/auth/token",
        data={"grant_type": "password", "username": body["email"], "password": PASSWORD},
    )
    assert token.status_code == 200, token.text
    headers = bearer(token.json()["access_token"])
    assert (await client.get("/v1/accounts/me", headers=headers)).status_code == 200
    created = await client.post(
        "/v1/api-keys", json={"name": "shop", "scopes": ["shipments:read"]}, headers=headers
    )
    assert created.status_code == 201
    key = bearer(created.json()["key"])
    assert (await client.get("/v1/accounts/me", headers=key)).status_code == 403
    refreshed = await client.post(
        "/v1/auth/token",
        data={"grant_type": "refresh_token", "refresh_token": token.json()["refresh_token"]},
    )
    assert refreshed.status_code == 200
    service = await client.post(
        "/v1/auth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": "privacy_api",
            "client_secret": "dev-only-privacy_api",
        },
    )
    assert service.status_code == 200
    # Delivered by the background worker, not by the test.
    [mail] = await smtp[1].wait_for(body["email"])
    assert "verify-email?token=" in Inbox.body(mail)
