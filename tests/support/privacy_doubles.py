"""Test doubles of identity and shipping that answer decision 0004 faithfully, in memory, and a
transport that routes privacy's outgoing HTTP to them by host (or refuses, when one is down).

Each double keeps rows as a real service would (table, category, record, who it is about),
authenticates service tokens from the test's :class:`TokenIssuer`, applies every call once per
``request_id`` and counts calls and applications, so tests can prove "never twice".
"""

import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Annotated, Any

import httpx
import orjson
from fastapi import Depends, FastAPI, Form, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from sqlalchemy import MetaData

from libs.common.auth import Principal, PrincipalKind, ServiceScope
from libs.common.errors import DomainError
from libs.common.pii import export_meta, exported_keys
from libs.common.validation import normalise_iban, normalise_phone, normalise_postcode
from services.identity_api.models import Base as IdentityBase
from services.shipping_api.models import Base as ShippingBase
from tests.support.tokens import TokenIssuer

IDENTITY_URL = "http://identity.test"
SHIPPING_URL = "http://shipping.test"


@dataclass
class Row:
    table: str
    """The real service's table, whose columns' annotations decide what a disclosure holds."""
    category: str
    """The export category the real service sends for the table."""
    record: dict[str, Any]
    account_id: uuid.UUID | None = None
    email: str | None = None
    phone: str | None = None
    pii_fields: tuple[str, ...] = ()
    kept_fields: tuple[tuple[str, str, int | None], ...] = ()
    """(field, reason, years) a legal obligation keeps on erasure."""
    restricted_basis: set[str] = field(default_factory=set)

    def is_about(self, subject: dict[str, Any]) -> bool:
        account = subject.get("account_id")
        email = (subject.get("email") or "").lower()
        phone = subject.get("phone")
        return bool(
            (account and self.account_id and str(self.account_id) == str(account))
            or (email and self.email and self.email.lower() == email)
            or (phone and self.phone and self.phone == phone)
        )


Validator = Callable[[Any], Any]


def _text(value: Any) -> Any:
    if not isinstance(value, str) or not value.strip():
        raise ValueError("must be a non-empty string")
    return value.strip()


class SubjectServiceDouble:
    """One service's side of the internal data-subject API."""

    def __init__(
        self,
        name: str,
        issuer: TokenIssuer,
        metadata: MetaData,
        rectifiable: dict[str, Validator] | None = None,
    ) -> None:
        self.name = name
        self.issuer = issuer
        self.metadata = metadata
        self.rows: list[Row] = []
        self.rectifiable = rectifiable or {}
        self.calls: Counter[tuple[str, str]] = Counter()
        self.applied: Counter[tuple[str, str]] = Counter()
        self.answers: dict[tuple[str, str], dict[str, Any]] = {}
        self.unavailable = False
        """Answer 503 to everything (a service that is up but failing)."""
        self.app = FastAPI()
        self.authenticator = issuer.authenticator()
        self._routes()

    # --- data ---------------------------------------------------------------------------------

    def add(self, row: Row) -> Row:
        self.rows.append(row)
        return row

    def rows_about(self, **subject: Any) -> list[Row]:
        return [row for row in self.rows if row.is_about(subject)]

    def scoped(self, row: Row, categories: list[str] | None) -> dict[str, Any] | None:
        """The record as the real service exports it for a disclosure limited to
        ``categories`` (``libs.common.pii``): the fields of those categories and the
        unannotated ones; ``None`` when the table holds none of them."""
        if categories is None:
            return row.record
        table = self.metadata.tables.get(row.table)
        kept = exported_keys(table, frozenset(categories)) if table is not None else frozenset()
        if not kept:
            return None
        # An encrypted column is exported decrypted, under its plain name (identity's IBAN).
        return {
            name: value
            for name, value in row.record.items()
            if name in kept or f"{name}_encrypted" in kept
        }

    # --- auth ---------------------------------------------------------------------------------

    async def service_principal(self, request: Request, scope: ServiceScope) -> Principal:
        header = request.headers.get("authorization", "")
        if not header.startswith("Bearer "):
            raise _Problem(401, "internal routes need a service token")
        try:
            principal = await self.authenticator.verify_token(header.removeprefix("Bearer "))
        except DomainError as exc:
            raise _Problem(401, exc.detail or "invalid token") from exc
        if principal.kind is not PrincipalKind.SERVICE:
            raise _Problem(401, "internal routes need a service token")
        if scope.value not in principal.scopes:
            raise _Problem(403, f"the service token lacks {scope.value}")
        return principal

    # --- routes -------------------------------------------------------------------------------

    def _routes(self) -> None:
        app = self.app

        @app.exception_handler(_Problem)
        async def problem(_: Request, exc: Exception) -> Response:
            assert isinstance(exc, _Problem)
            body: dict[str, Any] = {"title": exc.title, "status": exc.status, "detail": exc.detail}
            if exc.field:
                body["errors"] = [
                    {
                        "field": exc.field,
                        "location": "body",
                        "message": exc.detail,
                        "type": "value_error",
                    }
                ]
            return JSONResponse(body, status_code=exc.status, media_type="application/problem+json")

        @app.middleware("http")
        async def availability(request: Request, call_next: Any) -> Response:
            if self.unavailable:
                return JSONResponse({"title": "unavailable", "status": 503}, status_code=503)
            response: Response = await call_next(request)
            return response

        async def subjects_principal(request: Request) -> Principal:
            return await self.service_principal(request, ServiceScope.SUBJECTS)

        Caller = Annotated[Principal, Depends(subjects_principal)]

        @app.post("/internal/v1/subjects/export")
        async def export(request: Request, _: Caller) -> StreamingResponse:
            body = await request.json()
            self.calls[("export", body["request_id"])] += 1
            categories = body.get("categories")
            records = [
                (row, record)
                for row in self.rows
                if row.is_about(body["subject"])
                and (record := self.scoped(row, categories)) is not None
            ]

            scope = frozenset(categories) if categories is not None else None

            async def lines() -> AsyncIterator[bytes]:
                # In keyset-sized batches, as a real service streams them: each table's records
                # of a batch after the table's meta line (``libs.common.pii.export_lines``).
                for start in range(0, len(records), 500):
                    block = bytearray()
                    previous: str | None = None
                    for row, record in records[start : start + 500]:
                        if row.table != previous:
                            block += export_meta(self.metadata.tables[row.table], scope)
                            previous = row.table
                        line = {"category": row.category, "table": row.table, "record": record}
                        block += orjson.dumps(line) + b"\n"
                    yield bytes(block)

            return StreamingResponse(lines(), media_type="application/x-ndjson")

        @app.post("/internal/v1/subjects/erase")
        async def erase(request: Request, _: Caller) -> dict[str, Any]:
            body = await request.json()
            key = ("erase", body["request_id"])
            self.calls[key] += 1
            if key in self.answers:
                return self.answers[key]
            self.applied[key] += 1
            erased: Counter[str] = Counter()
            kept: dict[tuple[str, str], dict[str, Any]] = {}
            for row in self.rows:
                if not row.is_about(body["subject"]):
                    continue
                kept_names = {name for name, _, _ in row.kept_fields}
                for name in row.pii_fields:
                    if name not in kept_names:
                        row.record[name] = None
                for name, reason, years in row.kept_fields:
                    kept[(row.table, name)] = {
                        "table": row.table,
                        "field": name,
                        "category": row.category,
                        "reason": reason,
                        "retain_years": years,
                    }
                row.account_id = row.account_id if "account_id" in kept_names else None
                row.email = row.phone = None
                erased[row.table] += 1
            answer = {"service": self.name, "erased": dict(erased), "kept": list(kept.values())}
            self.answers[key] = answer
            return answer

        @app.post("/internal/v1/subjects/restrict")
        async def restrict(request: Request, _: Caller) -> dict[str, Any]:
            body = await request.json()
            basis = body.get("basis", "restriction")
            key = (f"restrict:{basis}:{body.get('restricted', True)}", body["request_id"])
            self.calls[key] += 1
            if key in self.answers:
                return self.answers[key]
            self.applied[key] += 1
            restricted: Counter[str] = Counter()
            for row in self.rows:
                if row.is_about(body["subject"]):
                    if body.get("restricted", True):
                        row.restricted_basis.add(basis)
                    else:
                        row.restricted_basis.discard(basis)
                    restricted[row.table] += 1
            answer = {"service": self.name, "restricted": dict(restricted)}
            self.answers[key] = answer
            return answer

        @app.post("/internal/v1/subjects/rectify")
        async def rectify(request: Request, _: Caller) -> dict[str, Any]:
            body = await request.json()
            key = ("rectify", body["request_id"])
            self.calls[key] += 1
            if key in self.answers:
                return self.answers[key]
            values: dict[str, Any] = {}
            for name, value in body["changes"].items():
                validator = self.rectifiable.get(name)
                if validator is None:
                    raise _Problem(422, f"{name} cannot be corrected here", field=f"changes.{name}")
                try:
                    values[name] = validator(value)
                except ValueError as exc:
                    raise _Problem(422, str(exc), field=f"changes.{name}") from exc
            self.applied[key] += 1
            rectified: Counter[str] = Counter()
            for row in self.rows:
                if row.is_about(body["subject"]):
                    touched = [name for name in values if name in row.record]
                    for name in touched:
                        row.record[name] = values[name]
                    if touched:
                        rectified[row.table] += 1
            answer = {"service": self.name, "rectified": dict(rectified), "fields": sorted(values)}
            self.answers[key] = answer
            return answer


class _Problem(Exception):
    def __init__(self, status: int, detail: str, *, field: str | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.field = field
        self.title = {401: "Authentication required", 403: "Forbidden", 404: "Not found"}.get(
            status, "Validation failed"
        )


class IdentityDouble(SubjectServiceDouble):
    """Identity: accounts (the sender details route), client credentials, subject API."""

    def __init__(self, issuer: TokenIssuer) -> None:
        super().__init__(
            "identity",
            issuer,
            IdentityBase.metadata,
            rectifiable={
                "name": _text,
                "street": _text,
                "city": _text,
                "house_number": _text,
                "postcode": lambda v: normalise_postcode(v, "NL"),
                "iban": normalise_iban,
                "phone": normalise_phone,
            },
        )
        self.accounts: dict[uuid.UUID, dict[str, Any]] = {}
        self.tokens_issued = 0
        app = self.app

        @app.post("/v1/auth/token")
        async def token(
            grant_type: Annotated[str, Form()],
            client_id: Annotated[str, Form()],
            client_secret: Annotated[str, Form()],
        ) -> Response:
            if grant_type != "client_credentials" or client_secret != f"dev-only-{client_id}":
                return JSONResponse({"error": "invalid_client"}, status_code=401)
            self.tokens_issued += 1
            return JSONResponse(
                {
                    "access_token": issuer.service(client_id),
                    "token_type": "bearer",
                    "expires_in": 600,
                }
            )

        async def accounts_principal(request: Request) -> Principal:
            return await self.service_principal(request, ServiceScope.ACCOUNTS_READ)

        @app.get("/internal/v1/accounts/{account_id}")
        async def account(
            account_id: uuid.UUID, _: Annotated[Principal, Depends(accounts_principal)]
        ) -> Response:
            found = self.accounts.get(account_id)
            if found is None:
                return JSONResponse({"title": "Not found", "status": 404}, status_code=404)
            return JSONResponse(found)

    def add_account(
        self,
        *,
        email: str,
        name: str = "Jansen Webshop B.V.",
        kvk_number: str = "12345678",
        iban: str = "NL91ABNA0417164300",
        request_log_rows: int = 3,
        email_verified: bool = True,
    ) -> uuid.UUID:
        account_id = uuid.uuid4()
        account = {
            "account_id": str(account_id),
            "debtor_number": "D-100234",
            "name": name,
            "contact_person": "Jan Jansen",
            "street": "Griede",
            "house_number": "22",
            "postcode": "3191 EE",
            "city": "Rotterdam",
            "country": "NL",
            "email": email,
            "email_verified": email_verified,
            "phone": "+31101234567",
            "is_restricted": False,
        }
        self.accounts[account_id] = account
        record = {
            **{name: value for name, value in account.items() if name != "email_verified"},
            "kvk_number": kvk_number,
            "iban": iban,
            "account_holder": name,
            "vat_number": "NL004495445B01",
            "website": "https://www.example.nl",
            "password_hash": "[stored, not disclosed]",
        }
        self.add(
            Row(
                table="accounts",
                category="account",
                record=record,
                account_id=account_id,
                email=email,
                pii_fields=("name", "contact_person", "email", "phone", "street", "iban"),
                kept_fields=(("debtor_number", "Art. 52 AWR: fiscal records", 7),),
            )
        )
        for i in range(request_log_rows):
            self.add(
                Row(
                    table="request_log",
                    category="request_log",
                    record={"ip": "198.51.100.23", "path": f"/v1/accounts/me/{i}", "status": 200},
                    account_id=account_id,
                    pii_fields=("ip", "path"),
                )
            )
        return account_id


class ShippingDouble(SubjectServiceDouble):
    """Shipping: shipments with their recipients; tracking keeps working after an erasure."""

    def __init__(self, issuer: TokenIssuer) -> None:
        super().__init__(
            "shipping",
            issuer,
            ShippingBase.metadata,
            rectifiable={
                "recipient_name": _text,
                "recipient_street": _text,
                "recipient_phone": normalise_phone,
            },
        )
        app = self.app

        @app.get("/v1/tracking/{tracking_code}")
        async def tracking(tracking_code: str) -> Response:
            for row in self.rows:
                if row.record.get("tracking_code") == tracking_code:
                    return JSONResponse(
                        {"tracking_code": tracking_code, "status": row.record["status"]}
                    )
            return JSONResponse({"title": "Not found", "status": 404}, status_code=404)

    def add_shipment(
        self,
        *,
        sender: uuid.UUID | None = None,
        recipient_email: str = "piet@example.nl",
        recipient_phone: str | None = "+31612345678",
        recipient_name: str = "Piet Pieters",
    ) -> Row:
        code = f"3SPPR{uuid.uuid4().hex[:10].upper()}"
        return self.add(
            Row(
                table="shipments",
                category="shipments",
                record={
                    "id": str(uuid.uuid4()),
                    "account_id": str(sender) if sender else None,
                    "tracking_code": code,
                    "status": "delivered",
                    "reference": "ORDER-1001",
                    "recipient_name": recipient_name,
                    "recipient_email": recipient_email,
                    "recipient_phone": recipient_phone,
                    "recipient_street": "Kerkstraat",
                    "recipient_postcode": "1234 AB",
                    "price_cents": 695,
                },
                account_id=sender,
                email=recipient_email,
                phone=recipient_phone,
                pii_fields=(
                    "recipient_name",
                    "recipient_email",
                    "recipient_phone",
                    "recipient_street",
                ),
                kept_fields=(("price_cents", "Art. 52 AWR: invoiced shipments", 7),),
            )
        )


class RoutingTransport(httpx.AsyncBaseTransport):
    """Routes by host to in-process ASGI apps; a host in ``down`` refuses connections."""

    def __init__(self, apps: dict[str, FastAPI]) -> None:
        self.transports: dict[str, httpx.AsyncBaseTransport] = {
            host: httpx.ASGITransport(app=app, client=("10.0.0.3", 40000))
            for host, app in apps.items()
        }
        self.down: set[str] = set()
        self.requests: Counter[str] = Counter()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        host = request.url.host
        self.requests[host] += 1
        if host in self.down or host not in self.transports:
            raise httpx.ConnectError("[Errno 111] Connection refused", request=request)
        return await self.transports[host].handle_async_request(request)


class Downstreams:
    """identity and shipping doubles behind one transport, as privacy_api sees them."""

    def __init__(self, issuer: TokenIssuer) -> None:
        self.identity = IdentityDouble(issuer)
        self.shipping = ShippingDouble(issuer)
        self.transport = RoutingTransport(
            {"identity.test": self.identity.app, "shipping.test": self.shipping.app}
        )

    def take_down(self, service: str) -> None:
        self.transport.down.add(f"{service}.test")

    def bring_up(self, service: str) -> None:
        self.transport.down.discard(f"{service}.test")
