"""A client of the platform running as real processes (see ``stack.py``), as its users meet
it through the gateway: account holders with their logins and API keys, valid request bodies,
mail read from the outbox, and read-only looks into a service's tables to check what was
stored. Synchronous helpers for end-to-end tests, asynchronous ones for fault tests."""

from __future__ import annotations

import email
import email.policy
import itertools
import re
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
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
    refresh_token: str = ""

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}


def unique_email(label: str = "webshop") -> str:
    return f"{label}-{uuid.uuid4().hex[:10]}@example.nl"


def shipment_payload(**changes: Any) -> dict[str, Any]:
    """A shipment to a recipient of its own (unique e-mail), who is not the account holder."""
    return shipment_body(
        reference=f"ORDER-{uuid.uuid4().hex[:8]}",
        recipient_changes={
            "name": "Piet de Vries",
            "contact_person": "Piet de Vries",
            "street": "Dorpsstraat",
            "house_number": "7",
            "postcode": "1234 AB",
            "city": "Amsterdam",
            "email": unique_email("piet"),
            "phone": "+31612345678",
        },
        **changes,
    )


def new_shipment(reference: str, *, recipient_name: str = "Jan Jansen") -> dict[str, Any]:
    return shipment_body(reference=reference, recipient_changes={"name": recipient_name})


# ---------------------------------------------------------------------------------------------
# Synchronous (end-to-end tests, benchmarks)
# ---------------------------------------------------------------------------------------------


def register_and_login(client: httpx.Client, **changes: Any) -> AccountHolder:
    body = account_body(email=unique_email(), **changes)
    registered = client.post("/v1/auth/register", json=body)
    assert registered.status_code == 201, registered.text
    token = client.post(
        "/v1/auth/token",
        data={"grant_type": "password", "username": body["email"], "password": PASSWORD},
    )
    assert token.status_code == 200, token.text
    tokens = token.json()
    return AccountHolder(
        account_id=registered.json()["account_id"],
        email=body["email"],
        access_token=tokens["access_token"],
        refresh_token=tokens["refresh_token"],
    )


def issue_api_key(
    client: httpx.Client, holder: AccountHolder, *scopes: str, mode: str = "live"
) -> tuple[str, str]:
    """(key id, key) of a new API key with ``scopes``."""
    response = client.post(
        "/v1/api-keys",
        json={"name": "webshop plug-in", "scopes": list(scopes), "mode": mode},
        headers=holder.headers,
    )
    assert response.status_code == 201, response.text
    body = response.json()
    return body["id"], body["key"]


def outbox_messages(var_dir: Path, to: str) -> list[EmailMessage]:
    found: list[EmailMessage] = []
    for path in sorted((var_dir / "outbox").glob("*.eml")):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        if isinstance(message, EmailMessage) and to.lower() in str(message["To"]).lower():
            found.append(message)
    return found


def wait_for_mail(
    var_dir: Path, to: str, *, within: float = 15.0, containing: str | None = None
) -> str:
    """The text of the latest mail to ``to`` (that contains ``containing``, when given)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        for message in reversed(outbox_messages(var_dir, to)):
            part = message.get_body(preferencelist=("plain",))
            assert part is not None
            content = str(part.get_content())
            if containing is None or containing in content:
                return content
        time.sleep(0.1)
    raise AssertionError(f"no mail to {to} within {within}s")


def six_digit_code(text: str) -> str:
    match = re.search(r"\b(\d{6})\b", text)
    assert match, text
    return match.group(1)


def wait_for_status(
    client: httpx.Client,
    url: str,
    *,
    headers: dict[str, str],
    statuses: set[str],
    within: float = 60.0,
) -> dict[str, Any]:
    deadline = time.monotonic() + within
    body: dict[str, Any] = {}
    while time.monotonic() < deadline:
        response = client.get(url, headers=headers)
        assert response.status_code == 200, response.text
        body = response.json()
        if body["status"] in statuses:
            return body
        time.sleep(0.2)
    raise AssertionError(f"{url} still {body.get('status')} after {within}s: {body}")


# ---------------------------------------------------------------------------------------------
# Asynchronous (fault tests)
# ---------------------------------------------------------------------------------------------


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
