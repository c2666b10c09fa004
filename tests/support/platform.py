"""Talking to the running platform through the gateway as its users do: a webshop owner
registering and logging in, a plug-in with an API key, a recipient reading their mail."""

from __future__ import annotations

import email
import email.policy
import re
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

PASSWORD = "kaas-fiets-regen-42-Griede"


def account_payload(**changes: Any) -> dict[str, Any]:
    payload = {
        "email": f"shop-{uuid.uuid4().hex[:10]}@example.nl",
        "password": PASSWORD,
        "name": "Jansen Webwinkel B.V.",
        "contact_person": "Jan Jansen",
        "postcode": "3191 EE",
        "house_number": "22",
        "street": "Griede",
        "city": "Hoogvliet Rotterdam",
        "country": "NL",
        "kvk_number": "12345678",
        "iban": "NL91ABNA0417164300",
        "account_holder": "Jansen Webwinkel B.V.",
        "phone": "+31101234567",
        "website": "https://www.jansen-webwinkel.nl",
        "vat_number": "NL004495445B01",
    }
    payload.update(changes)
    return payload


def shipment_payload(**changes: Any) -> dict[str, Any]:
    payload = {
        "reference": f"ORDER-{uuid.uuid4().hex[:8]}",
        "carrier": "postnl",
        "service": "standard",
        "recipient": {
            "name": "Piet de Vries",
            "contact_person": "Piet de Vries",
            "street": "Dorpsstraat",
            "house_number": "7",
            "postcode": "1234 AB",
            "city": "Amsterdam",
            "country": "NL",
            "email": f"piet-{uuid.uuid4().hex[:8]}@example.nl",
            "phone": "+31612345678",
        },
        "parcels": [{"weight_grams": 1200, "length_cm": 40, "width_cm": 30, "height_cm": 20}],
    }
    payload.update(changes)
    return payload


@dataclass
class AccountHolder:
    client: httpx.Client
    email: str
    account_id: str
    access_token: str
    refresh_token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}

    def api_key(self, *scopes: str, mode: str = "live") -> tuple[str, str]:
        response = self.client.post(
            "/v1/api-keys",
            json={"name": "webshop plug-in", "scopes": list(scopes), "mode": mode},
            headers=self.headers,
        )
        assert response.status_code == 201, response.text
        body = response.json()
        return body["id"], body["key"]


def register_and_login(client: httpx.Client, **changes: Any) -> AccountHolder:
    payload = account_payload(**changes)
    registered = client.post("/v1/auth/register", json=payload)
    assert registered.status_code == 201, registered.text
    token = client.post(
        "/v1/auth/token",
        data={"grant_type": "password", "username": payload["email"], "password": PASSWORD},
    )
    assert token.status_code == 200, token.text
    tokens = token.json()
    return AccountHolder(
        client=client,
        email=payload["email"],
        account_id=registered.json()["account_id"],
        access_token=tokens["access_token"],
        refresh_token=tokens["refresh_token"],
    )


def outbox_messages(var_dir: Path, to: str) -> list[email.message.EmailMessage]:
    found = []
    for path in sorted((var_dir / "outbox").glob("*.eml")):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        if to.lower() in str(message["To"]).lower():
            found.append(message)  # type: ignore[arg-type]
    return found


def wait_for_mail(var_dir: Path, to: str, *, within: float = 15.0) -> str:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        messages = outbox_messages(var_dir, to)
        if messages:
            part = messages[-1].get_body(preferencelist=("plain",))
            assert part is not None
            return str(part.get_content())
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
