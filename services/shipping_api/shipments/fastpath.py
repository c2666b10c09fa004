"""An account holder's ``GET /v1/shipments/{id}`` and ``POST /v1/shipments``, answered before
routing.

Webshops poll their shipments and push new ones at the evening peak: the API's most frequent
authenticated calls. Through FastAPI and the ORM each cost several times its statements:
dependency resolution, an ORM session, model validation and serialisation, and for a create
nine round trips (docs/performance.md). Here, after the request log and the API-wide checks
(which already authenticated the caller and counted the request against its account), each is
one prepared statement through asyncpg, answered with the document exactly as the route renders
it (``shipments.document``).

Everything else goes on to the route, which answers as always: staff (whose reads are audited),
credentials without the scope, no or bad credentials, ids that are not canonical UUIDs, a query
string, a shipment that is not the caller's or, for an API key, not of the key's mode (404,
0205: the key's mode is a parameter of the read), a create with an ``Idempotency-Key`` or a
body the rules refuse (the route names the fields), SQLite, and a database that cannot be
reached (503). A create whose statement may have been stored before its connection failed is
answered here, as the route answers a database that fails mid-request (503): routed, it could
be stored twice.
"""

from __future__ import annotations

import re
from typing import Any

import asyncpg
import orjson
from pydantic import ValidationError
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from starlette.requests import Request
from starlette.routing import Route
from starlette.types import Scope, Send

from libs.common.auth import ACCESS_REASON_HEADER, Principal
from libs.common.auth import Scope as CredentialScope
from libs.common.driver import DIRECT_ERRORS, DirectStatement, DirectStatements, may_have_run
from libs.common.errors import DomainError
from libs.common.idempotency import HEADER as IDEMPOTENCY_HEADER
from libs.common.logging import get_logger
from libs.common.prerouting import PreRoutingAnswers
from services.shipping_api.shipments import service
from services.shipping_api.shipments.access import key_mode
from services.shipping_api.shipments.document import shipment_document
from services.shipping_api.shipments.endpoints import creation_context
from services.shipping_api.shipments.endpoints import router as shipments_router
from services.shipping_api.shipments.repository import (
    CREATE_ONE,
    DOCUMENT_OF_ACCOUNT,
    DOCUMENT_OF_ACCOUNT_IN_MODE,
)
from services.shipping_api.shipments.schemas import ShipmentCreate
from services.shipping_api.shipments.tracking_codes import new_tracking_code

PREFIX = shipments_router.prefix + "/"


def _route(path: str, method: str) -> Route:
    """The route that answers ``method`` on ``path``: the metrics and the request log label a
    pre-routing answer with its template, as if routed."""
    return next(
        r
        for r in shipments_router.routes
        if isinstance(r, Route) and r.path == path and method in (r.methods or ())
    )


ROUTE = _route(PREFIX + "{shipment_id}", "GET")
CREATE_ROUTE = _route(shipments_router.prefix, "POST")
STATEMENT = DirectStatement(DOCUMENT_OF_ACCOUNT_IN_MODE)
"""An API key's read: only a shipment of the key's mode."""
LOGIN_STATEMENT = DirectStatement(DOCUMENT_OF_ACCOUNT)
"""The account holder's own login's read: either mode's shipment."""
CREATE = DirectStatement(CREATE_ONE)
_CANONICAL_UUID = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)
_REASON = ACCESS_REASON_HEADER.lower().encode()
_READ = CredentialScope.SHIPMENTS_READ.value
_WRITE = CredentialScope.SHIPMENTS_WRITE.value
_IDEMPOTENCY_KEY = IDEMPOTENCY_HEADER.lower().encode()
_TRACKING_CODE_TAKEN = "uq_shipments_tracking_code"
# A new code per attempt, as the route does (60 random bits: a collision is rare, never
# impossible); after these the route tries with codes of its own.
_ATTEMPTS = 3

log = get_logger("shipments.fastpath")


def _account_holder_with(scope: Scope, credential_scope: str) -> Principal | None:
    """The caller the API-wide checks authenticated, when an account holder whose credential
    carries ``credential_scope`` (staff and everyone else are the route's)."""
    principal = (scope.get("state") or {}).get("principal")
    if (
        isinstance(principal, Principal)
        and principal.is_account_holder
        and credential_scope in principal.scopes
    ):
        return principal
    return None


class DirectShipmentReads(PreRoutingAnswers):
    prefix = PREFIX
    route = ROUTE

    async def answer(self, scope: Scope, body: bytes, send: Send) -> bool:
        shipment_id = scope["path"][len(PREFIX) :]
        if not _CANONICAL_UUID.fullmatch(shipment_id):
            return False
        principal = _account_holder_with(scope, _READ)
        if principal is None or any(name == _REASON for name, _ in scope["headers"]):
            return False
        direct: DirectStatements = scope["app"].state.direct
        params: dict[str, Any] = {
            "shipment_id": shipment_id.lower(),
            "account_id": principal.account_id,
        }
        statement = LOGIN_STATEMENT
        mode = key_mode(principal)
        if mode is not None:
            statement = STATEMENT
            params["mode"] = mode.value
        try:
            rows = await direct.fetch(statement, params)
        except DIRECT_ERRORS as exc:
            log.warning("direct read failed; routed instead", error=type(exc).__name__)
            return False
        if not rows:
            return False
        await self.send_json(scope, send, shipment_document(rows))
        return True


class DirectShipmentCreates(PreRoutingAnswers):
    """``POST /v1/shipments`` without an ``Idempotency-Key``, stored with one statement
    (``repository.CREATE_ONE``) and answered ``201`` as the route answers. Creates that wait for
    a connection at the same time are sent together and committed as one transaction
    (``DirectStatements.write``, 0710)."""

    method = "POST"
    prefix = shipments_router.prefix
    route = CREATE_ROUTE

    async def answer(self, scope: Scope, body: bytes, send: Send) -> bool:
        if scope["path"] != self.prefix:
            return False
        principal = _account_holder_with(scope, _WRITE)
        if principal is None or not _is_plain_json(scope):
            return False
        state = scope["app"].state
        direct: DirectStatements = state.direct
        if not direct.available:
            return False
        context = creation_context(
            principal,
            clock=state.clock,
            rates=state.rate_table,
            blind_index=state.blind_index,
            outboxes=state.outboxes,
        )
        try:
            item = ShipmentCreate.model_validate(orjson.loads(body))
            prepared = service.prepare_shipment(item, context)
        except (ValueError, ValidationError, DomainError):
            return False  # the route names what is wrong, as it always has
        for _ in range(_ATTEMPTS):
            try:
                await direct.write(CREATE, service.direct_create_parameters(prepared, context))
            except asyncpg.UniqueViolationError as exc:
                if exc.constraint_name == _TRACKING_CODE_TAKEN:
                    prepared.row["tracking_code"] = new_tracking_code()
                    continue
                log.warning("direct create refused; routed instead", error=type(exc).__name__)
                return False
            except DIRECT_ERRORS as exc:
                if may_have_run(exc):
                    # Sent, then the connection failed: the shipment may be stored, and the
                    # route would store it (and announce it) a second time.
                    log.warning("direct create outcome unknown", error=type(exc).__name__)
                    await self._send_database_unavailable(scope, send, exc)
                    return True
                # Not sent, or refused: nothing is stored, and the route answers as it would.
                log.warning("direct create failed; routed instead", error=type(exc).__name__)
                return False
            location = f"{self.prefix}/{prepared.id}".encode()
            await self.send_json(
                scope,
                send,
                shipment_document(service.document_rows(prepared)),
                status=201,
                headers=[(b"location", location)],
            )
            return True
        return False

    async def _send_database_unavailable(
        self, scope: Scope, send: Send, cause: BaseException
    ) -> None:
        """The app's own answer to a database that fails mid-request (0650: 503 with
        ``Retry-After``), made by its handler of database errors from the error SQLAlchemy
        raises for such a failure in a route."""
        error = OperationalError(None, None, cause)
        error.__cause__ = cause
        handler = scope["app"].exception_handlers[SQLAlchemyError]
        response = await handler(Request(scope), error)
        scope["route"] = self.route
        await send(
            {
                "type": "http.response.start",
                "status": response.status_code,
                "headers": response.raw_headers,
            }
        )
        await send({"type": "http.response.body", "body": response.body})


def _is_plain_json(scope: Scope) -> bool:
    """A JSON body and no ``Idempotency-Key`` (whose claims and replays are the route's)."""
    json_body = False
    for name, value in scope["headers"]:
        if name == _IDEMPOTENCY_KEY:
            return False
        if name == b"content-type":
            json_body = value.lower().startswith(b"application/json")
    return json_body
