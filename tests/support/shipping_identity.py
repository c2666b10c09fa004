"""A test double of identity for shipping_api: the token endpoint (client credentials) and
``GET /internal/v1/accounts/{account_id}`` exactly as decisions 0003 and 0004 describe them."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import orjson

SERVICE_TOKEN = "service-token-for-shipping"


def sender_account(account_id: uuid.UUID, **changes: Any) -> dict[str, Any]:
    account = {
        "account_id": str(account_id),
        "debtor_number": "D-100234",
        "name": "Webwinkel De Boekenkast B.V.",
        "contact_person": "Sanne de Boer",
        "street": "Coolsingel",
        "house_number": "40",
        "postcode": "3011 AD",
        "city": "Rotterdam",
        "country": "NL",
        "email": "logistiek@boekenkast.example",
        "phone": "+31101234567",
        "is_restricted": False,
    }
    account.update(changes)
    return account


class IdentityDouble:
    """Answers like identity; ``down`` makes every call fail like an unreachable service."""

    def __init__(self) -> None:
        self.accounts: dict[uuid.UUID, dict[str, Any]] = {}
        self.down = False
        self.account_calls = 0
        self.token_calls = 0

    def add(self, account_id: uuid.UUID, **changes: Any) -> dict[str, Any]:
        self.accounts[account_id] = sender_account(account_id, **changes)
        return self.accounts[account_id]

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def handle(self, request: httpx.Request) -> httpx.Response:
        if self.down:
            raise httpx.ConnectError("connection refused", request=request)
        path = request.url.path
        if request.method == "POST" and path == "/v1/auth/token":
            self.token_calls += 1
            form = dict(httpx.QueryParams(request.content.decode()))
            if (
                form.get("grant_type") != "client_credentials"
                or form.get("client_secret") != "dev-only-shipping_api"
            ):
                return httpx.Response(401, json={"title": "invalid client"})
            return httpx.Response(
                200,
                json={"access_token": SERVICE_TOKEN, "token_type": "Bearer", "expires_in": 600},
            )
        if request.method == "GET" and path.startswith("/internal/v1/accounts/"):
            self.account_calls += 1
            if request.headers.get("authorization") != f"Bearer {SERVICE_TOKEN}":
                return httpx.Response(401, json={"title": "service token required"})
            try:
                account_id = uuid.UUID(path.rsplit("/", 1)[1])
            except ValueError:
                return httpx.Response(404, json={"title": "not found"})
            account = self.accounts.get(account_id)
            if account is None:
                return httpx.Response(404, json={"title": "not found"})
            return httpx.Response(
                200, content=orjson.dumps(account), headers={"content-type": "application/json"}
            )
        return httpx.Response(404, json={"title": "not found"})


class IdentityOrNetwork(httpx.AsyncBaseTransport):
    """The app's one outgoing transport in a test: calls to identity's address go to the
    double, everything else (webhook receivers on loopback) to the real network stack."""

    def __init__(self, identity: IdentityDouble, identity_url: str) -> None:
        self.identity = httpx.MockTransport(identity.handle)
        self.network = httpx.AsyncHTTPTransport()
        url = httpx.URL(identity_url)
        self.identity_origin = (url.host, url.port)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if (request.url.host, request.url.port) == self.identity_origin:
            return await self.identity.handle_async_request(request)
        return await self.network.handle_async_request(request)

    async def aclose(self) -> None:
        await self.network.aclose()
