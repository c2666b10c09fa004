"""A client of the platform running as real processes (see ``stack.py``): account holders with
their logins and API keys, valid request bodies, and read-only looks into a service's tables to
check what was stored."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import Executable, text

from libs.common.db import create_engine
from tests.support.identity_app import PASSWORD, account_body
from tests.support.shipping_factories import shipment_body
from tests.support.stack import Stack

_numbers = itertools.count(1)

FAST_PASSWORD_HASHING = {
    # Registration and login hash a password: cheap parameters keep set-up quick.
    "IDENTITY_PASSWORD_TIME_COST": "1",
    "IDENTITY_PASSWORD_MEMORY_COST_KIB": "1024",
    "IDENTITY_PASSWORD_PARALLELISM": "1",
}


@dataclass(frozen=True)
class AccountHolder:
    account_id: str
    email: str
    access_token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}


def unique_email(label: str = "webshop") -> str:
    return f"{label}-{uuid.uuid4().hex[:10]}@example.nl"


async def sign_up(client: httpx.AsyncClient, *, email: str | None = None) -> AccountHolder:
    """Register an account holder and log in (through whatever ``client`` points at)."""
    number = next(_numbers)
    body = account_body(email=email or unique_email(), name=f"Webwinkel {number} B.V.")
    registered = await client.post("/v1/auth/register", json=body)
    assert registered.status_code == 201, registered.text
    tokens = await client.post(
        "/v1/auth/token",
        data={"grant_type": "password", "username": body["email"], "password": PASSWORD},
    )
    assert tokens.status_code == 200, tokens.text
    return AccountHolder(
        account_id=registered.json()["account_id"],
        email=body["email"],
        access_token=tokens.json()["access_token"],
    )


async def create_api_key(
    client: httpx.AsyncClient,
    holder: AccountHolder,
    scopes: tuple[str, ...] = ("shipments:read", "shipments:write"),
) -> str:
    response = await client.post(
        "/v1/api-keys", json={"name": "Webshop", "scopes": list(scopes)}, headers=holder.headers
    )
    assert response.status_code == 201, response.text
    key: str = response.json()["key"]
    return key


async def subscribe_webhooks(
    client: httpx.AsyncClient, holder: AccountHolder, url: str, events: tuple[str, ...]
) -> str:
    response = await client.post(
        "/v1/webhook-endpoints",
        json={"url": url, "events": list(events)},
        headers=holder.headers,
    )
    assert response.status_code == 201, response.text
    endpoint_id: str = response.json()["id"]
    return endpoint_id


def new_shipment(reference: str, *, recipient_name: str = "Jan Jansen") -> dict[str, Any]:
    return shipment_body(reference=reference, recipient_changes={"name": recipient_name})


def database_url(stack: Stack, service: str) -> str:
    return stack.env[f"{service.upper()}_DATABASE_URL"]


async def query(
    stack: Stack,
    service: str,
    statement: str | Executable,
    params: Mapping[str, Any] | None = None,
) -> list[Any]:
    """Rows of ``statement`` run in ``service``'s own schema (or SQLite file)."""
    return await _run(stack, service, statement, params, commit=False)


async def execute(
    stack: Stack,
    service: str,
    statement: str | Executable,
    params: Mapping[str, Any] | None = None,
) -> None:
    """Change ``service``'s data behind its back (a test moving time forward on a row)."""
    await _run(stack, service, statement, params, commit=True)


async def _run(
    stack: Stack,
    service: str,
    statement: str | Executable,
    params: Mapping[str, Any] | None,
    *,
    commit: bool,
) -> list[Any]:
    url = database_url(stack, service)
    engine = create_engine(url, schema=None if url.startswith("sqlite") else service, pool_size=1)
    executable = text(statement) if isinstance(statement, str) else statement
    try:
        async with engine.connect() as conn:
            result = await conn.execute(executable, dict(params or {}))
            rows = list(result.all()) if result.returns_rows else []
            if commit:
                await conn.commit()
            return rows
    finally:
        await engine.dispose()
