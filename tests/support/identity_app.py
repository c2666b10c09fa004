"""A real identity_api in-process for tests: rolled-back database, manual clock, real SMTP,
and one-line helpers to register, log in, create API keys and get service tokens.

Other services' tests can use it to check that they accept what identity really issues.
"""

from __future__ import annotations

import itertools
import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from libs.common.app import Overrides
from libs.common.clock import ManualClock
from libs.common.db import Database
from libs.common.mail import Mailer, SmtpMailer
from services.identity_api.app import create_app
from services.identity_api.models import StaffRole
from services.identity_api.settings import IdentitySettings
from services.identity_api.staff.service import create_staff
from tests.support.db import rolled_back

PASSWORD = "kaas-fiets-regen-42"
CLIENT_ADDRESS = ("203.0.113.7", 50000)
_numbers = itertools.count(1)
SECRET_MARKERS = ("$argon2", "aesgcm:")


def fast_settings(settings: IdentitySettings, **changes: Any) -> IdentitySettings:
    """Cheap argon2 parameters (tests hash hundreds of passwords) and no mail worker (tests
    deliver the outbox themselves, on the test's own database connection)."""
    return settings.model_copy(
        update={
            "password_time_cost": 1,
            "password_memory_cost_kib": 1024,
            "password_parallelism": 1,
            "mail_outbox_worker": False,
            **changes,
        }
    )


def account_body(**overrides: Any) -> dict[str, Any]:
    number = next(_numbers)
    body: dict[str, Any] = {
        "email": f"webshop{number}@example.nl",
        "password": PASSWORD,
        "name": f"Webwinkel {number} B.V.",
        "contact_person": "Jan Jansen",
        "postcode": "3191EE",
        "house_number": "22",
        "street": "Griede",
        "city": "Hoogvliet Rotterdam",
        "country": "NL",
        "kvk_number": "12345678",
        "iban": "NL91ABNA0417164300",
        "account_holder": "Webwinkel B.V.",
        "phone": "06 12345678",
        "website": "https://www.example.nl",
        "vat_number": "NL004495445B01",
    }
    body.update(overrides)
    return body


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _no_secrets(response: httpx.Response) -> None:
    """Every response of every test is checked: no hash or ciphertext ever leaves identity."""
    if response.request.url.path.endswith("/subjects/export"):
        return  # streamed; checked by its own tests
    body = (await response.aread()).decode(errors="replace")
    for marker in SECRET_MARKERS:
        assert marker not in body, f"{marker!r} in response of {response.request.url.path}"


@dataclass
class Identity:
    app: FastAPI
    client: httpx.AsyncClient
    clock: ManualClock
    settings: IdentitySettings
    database: Database
    passwords: dict[str, str] = field(default_factory=dict)

    async def register(self, **overrides: Any) -> dict[str, Any]:
        body = account_body(**overrides)
        response = await self.client.post("/v1/auth/register", json=body)
        assert response.status_code == 201, response.text
        account: dict[str, Any] = response.json()
        self.passwords[body["email"]] = body["password"]
        return account

    async def token_response(self, **form: str) -> httpx.Response:
        return await self.client.post("/v1/auth/token", data=form)

    async def login(self, email: str, password: str | None = None, **form: str) -> dict[str, Any]:
        response = await self.token_response(
            grant_type="password",
            username=email,
            password=password or self.passwords.get(email, PASSWORD),
            **form,
        )
        assert response.status_code == 200, response.text
        tokens: dict[str, Any] = response.json()
        return tokens

    async def user(self, **overrides: Any) -> tuple[dict[str, Any], dict[str, str]]:
        """A registered account and the headers of its login."""
        account = await self.register(**overrides)
        tokens = await self.login(account["email"])
        return account, bearer(tokens["access_token"])

    async def staff(self, role: str, **form: str) -> tuple[uuid.UUID, dict[str, str]]:
        """A new staff member with ``role`` (a ``StaffRole`` or ``Role`` value), their id and the
        headers of their login (``form``: extra token-request fields, e.g. ``scope``)."""
        email = f"{role}-{uuid.uuid4().hex[:8]}@parcelpro.nl"
        async with self.database.session() as session:
            staff = await create_staff(
                session,
                self.app.state.identity_runtime.passwords,
                email=email,
                role=StaffRole(role),
                password=PASSWORD,
                name=None,
                now=self.clock.now(),
            )
            await session.commit()
            staff_id = staff.id
        tokens = await self.login(email, PASSWORD, **form)
        return staff_id, bearer(tokens["access_token"])

    async def service_token(self, client_id: str = "privacy_api") -> str:
        response = await self.token_response(
            grant_type="client_credentials",
            client_id=client_id,
            client_secret=f"dev-only-{client_id}",
        )
        assert response.status_code == 200, response.text
        token: str = response.json()["access_token"]
        return token

    async def api_key(self, headers: dict[str, str], **body: Any) -> dict[str, Any]:
        payload = {"name": "Webshop", "scopes": ["shipments:read"], **body}
        response = await self.client.post("/v1/api-keys", json=payload, headers=headers)
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()
        return created

    async def deliver_mail(self) -> int:
        delivered: int = await self.app.state.mail_outbox.deliver_due()
        return delivered


def link_token(body: str) -> str:
    match = re.search(r"token=([A-Za-z0-9_\-]+)", body)
    assert match is not None, body
    return match.group(1)


@asynccontextmanager
async def identity_app(
    settings: IdentitySettings,
    *,
    mailer: Mailer | None = None,
    smtp_url: str | None = None,
    clock: ManualClock | None = None,
    client_address: tuple[str, int] = CLIENT_ADDRESS,
) -> AsyncIterator[Identity]:
    clock = clock or ManualClock(datetime.now(UTC).replace(microsecond=0))
    if mailer is None and smtp_url is not None:
        mailer = SmtpMailer(smtp_url, sender=settings.mail_from, timeout_seconds=5)
    async with rolled_back(settings) as database:
        app = create_app(settings, Overrides(database=database, clock=clock, mailer=mailer))
        async with LifespanManager(app, startup_timeout=30, shutdown_timeout=30):
            # The app itself, not ``manager.app``: asgi-lifespan hands every request the same
            # ``scope["state"]`` dict, so ``request.state`` (the authenticated principal!) would
            # leak from one request into the next; uvicorn gives each request its own copy.
            transport = httpx.ASGITransport(app=app, client=client_address)
            async with httpx.AsyncClient(
                transport=transport,
                base_url="http://testserver",
                event_hooks={"response": [_no_secrets]},
            ) as client:
                yield Identity(app, client, clock, settings, database)
