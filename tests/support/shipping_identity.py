"""A test double of identity for shipping_api: the token endpoint (client credentials),
``GET /internal/v1/accounts/{account_id}`` exactly as decisions 0003 and 0004 describe them, and
``POST /internal/v1/accounts/{account_id}/notices`` (an account notice identity mails, 0206)."""

from __future__ import annotations

import uuid
from collections import deque
from typing import Any

import httpx
import orjson

from libs.common.auth import ServiceScope
from libs.common.errors import PROBLEM_BASE, AccountNotFound

SERVICE_TOKEN = "service-token-for-shipping"
SHIPPING_SCOPES = frozenset(
    {
        ServiceScope.INTROSPECT,
        ServiceScope.ACCOUNTS_READ,
        ServiceScope.CONSENTS_READ,
        ServiceScope.ACCOUNTS_NOTIFY,
    }
)
"""What identity grants shipping_api's client."""


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


def problem(status: int, title: str, slug: str | None = None) -> httpx.Response:
    kind = PROBLEM_BASE + slug if slug else "about:blank"
    return httpx.Response(
        status,
        content=orjson.dumps({"type": kind, "title": title, "status": status}),
        headers={"content-type": "application/problem+json"},
    )


class IdentityDouble:
    """Answers like identity; ``down`` makes every call fail like an unreachable service."""

    def __init__(self) -> None:
        self.accounts: dict[uuid.UUID, dict[str, Any]] = {}
        self.down = False
        self.account_calls = 0
        self.token_calls = 0
        self.token = SERVICE_TOKEN
        """The token identity accepts now (and issues)."""
        self.scopes: frozenset[str] = SHIPPING_SCOPES
        self.notice_calls: list[tuple[str | None, dict[str, Any]]] = []
        """Every notice POSTed: its Authorization header and body."""
        self.notices: dict[str, dict[str, Any]] = {}
        """The notices taken, by their id (a repeat of an id is taken once)."""
        self.notice_answers: deque[int] = deque()
        """Statuses to answer the next notices with instead of deciding (e.g. 500, 409)."""

    def add(self, account_id: uuid.UUID, **changes: Any) -> dict[str, Any]:
        self.accounts[account_id] = sender_account(account_id, **changes)
        return self.accounts[account_id]

    def rotate_token(self) -> None:
        """Identity's signing key rotated: the token issued so far is refused."""
        self.token = f"{SERVICE_TOKEN}-{self.token_calls}"

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
                json={"access_token": self.token, "token_type": "Bearer", "expires_in": 600},
            )
        if request.method == "POST" and path.endswith("/notices"):
            return self.take_notice(request)
        if request.method == "GET" and path.startswith("/internal/v1/accounts/"):
            self.account_calls += 1
            if request.headers.get("authorization") != f"Bearer {self.token}":
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

    def take_notice(self, request: httpx.Request) -> httpx.Response:
        authorization = request.headers.get("authorization")
        body: dict[str, Any] = orjson.loads(request.content)
        self.notice_calls.append((authorization, body))
        if authorization != f"Bearer {self.token}":
            return problem(401, "service token required")
        if ServiceScope.ACCOUNTS_NOTIFY not in self.scopes:
            return problem(403, "scope internal:accounts.notify required")
        if self.notice_answers:
            status = self.notice_answers.popleft()
            return problem(status, "answer chosen by the test")
        try:
            account_id = uuid.UUID(request.url.path.split("/")[-2])
        except ValueError:
            return problem(404, "not found")
        if account_id not in self.accounts:
            return problem(404, "Account not found", AccountNotFound.slug)
        self.notices.setdefault(body["id"], body)
        return httpx.Response(202)


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
