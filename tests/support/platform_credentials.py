"""Real credentials of every kind, issued by a running platform (``tests.support.stack``):
an account holder's login, API keys per scope and mode, staff of each role (made with
``python -m services.identity_api create-staff``, as an operator would) and service tokens."""

from __future__ import annotations

import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson

from libs.common.auth import Role, Scope
from tests.support.stack import ROOT, Stack

PASSWORD = "kaas-fiets-regen-42"

ACCOUNT_BODY: dict[str, Any] = {
    "password": PASSWORD,
    "name": "Webwinkel De Boekenkast B.V.",
    "contact_person": "Sanne de Boer",
    "postcode": "3011AD",
    "house_number": "40",
    "street": "Coolsingel",
    "city": "Rotterdam",
    "country": "NL",
    "kvk_number": "12345678",
    "iban": "NL91ABNA0417164300",
    "account_holder": "De Boekenkast B.V.",
    "phone": "010 1234567",
    "website": "https://www.boekenkast.example",
    "vat_number": "NL004495445B01",
}


@dataclass(frozen=True)
class AccountHolder:
    account_id: uuid.UUID
    email: str
    access_token: str
    api_keys: dict[str, str] = field(default_factory=dict)
    """``"<mode>:<scope>"`` (one scope each) and ``"<mode>:all"`` → the key."""

    def api_key(self, scope: Scope | str = "all", *, mode: str = "live") -> str:
        name = scope.value if isinstance(scope, Scope) else scope
        return self.api_keys[f"{mode}:{name}"]


@dataclass(frozen=True)
class Credentials:
    holders: list[AccountHolder]
    staff: dict[Role, str]
    staff_ids: dict[Role, uuid.UUID]
    services: dict[str, str]
    """client id (``shipping_api``, ``privacy_api``) → a service token."""

    @property
    def holder(self) -> AccountHolder:
        return self.holders[0]

    @property
    def other_holder(self) -> AccountHolder:
        return self.holders[1]


def _check(response: httpx.Response, status: int) -> dict[str, Any]:
    if response.status_code != status:
        raise AssertionError(f"{response.request.method} {response.request.url}: {response.text}")
    body: dict[str, Any] = response.json()
    return body


def register_account_holder(client: httpx.Client, stack: Stack, email: str) -> AccountHolder:
    identity = stack.service_url("identity")
    account = _check(
        client.post(f"{identity}/v1/auth/register", json={**ACCOUNT_BODY, "email": email}), 201
    )
    tokens = _check(
        client.post(
            f"{identity}/v1/auth/token",
            data={"grant_type": "password", "username": email, "password": PASSWORD},
        ),
        200,
    )
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    keys: dict[str, str] = {}
    for mode in ("live", "test"):
        grants: dict[str, list[str]] = {scope.value: [scope.value] for scope in Scope}
        grants["all"] = [scope.value for scope in Scope]
        for name, scopes in grants.items():
            created = _check(
                client.post(
                    f"{identity}/v1/api-keys",
                    json={"name": f"{mode} {name}", "scopes": scopes, "mode": mode},
                    headers=headers,
                ),
                201,
            )
            keys[f"{mode}:{name}"] = created["key"]
    return AccountHolder(
        account_id=uuid.UUID(account["account_id"]),
        email=email,
        access_token=tokens["access_token"],
        api_keys=keys,
    )


def create_staff(stack: Stack, role: Role, email: str) -> uuid.UUID:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "services.identity_api",
            "create-staff",
            "--email",
            email,
            "--role",
            role.value,
            "--password",
            PASSWORD,
        ],
        cwd=ROOT,
        env=stack.env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if result.returncode != 0:
        raise AssertionError(f"create-staff failed: {result.stdout}{result.stderr}")
    created: dict[str, str] = orjson.loads(result.stdout.strip().splitlines()[-1])
    return uuid.UUID(created["id"])


def staff_token(client: httpx.Client, stack: Stack, email: str) -> str:
    tokens = _check(
        client.post(
            f"{stack.service_url('identity')}/v1/auth/token",
            data={
                "grant_type": "password",
                "username": email,
                "password": PASSWORD,
                "scope": "staff",
            },
        ),
        200,
    )
    return str(tokens["access_token"])


def service_token(client: httpx.Client, stack: Stack, client_id: str) -> str:
    tokens = _check(
        client.post(
            f"{stack.service_url('identity')}/v1/auth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": client_id,
                "client_secret": f"dev-only-{client_id}",
            },
        ),
        200,
    )
    return str(tokens["access_token"])


def issue_credentials(stack: Stack, *, label: str = "creds") -> Credentials:
    """Two account holders (so one can try to reach the other's objects), staff of every role
    and both services' tokens, all issued by the running identity service."""
    suffix = uuid.uuid4().hex[:8]
    with httpx.Client(timeout=30.0) as client:
        holders = [
            register_account_holder(client, stack, f"{label}-{n}-{suffix}@example.nl")
            for n in ("a", "b")
        ]
        staff: dict[Role, str] = {}
        staff_ids: dict[Role, uuid.UUID] = {}
        for role in Role:
            email = f"{label}-{role.value}-{suffix}@parcelpro.nl"
            staff_ids[role] = create_staff(stack, role, email)
            staff[role] = staff_token(client, stack, email)
        services = {
            client_id: service_token(client, stack, client_id)
            for client_id in ("shipping_api", "privacy_api")
        }
    return Credentials(holders=holders, staff=staff, staff_ids=staff_ids, services=services)
