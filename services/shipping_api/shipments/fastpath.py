"""An account holder's ``GET /v1/shipments/{id}``, answered before routing.

Webshops poll their shipments; the read is the API's most frequent authenticated call. Through
FastAPI it cost several times the read itself: dependency resolution, an ORM session, model
validation and serialisation (docs/performance.md). Here, after the request log and the
API-wide checks (which already authenticated the caller and counted the request against its
account), the document is read with one prepared statement through asyncpg and sent as bytes,
exactly as the route renders it (``shipments.document``).

Everything else goes on to the route, which answers as always: staff (whose reads are audited),
credentials without ``shipments:read``, no or bad credentials, ids that are not canonical
UUIDs, a query string, a shipment that is not the caller's (404), SQLite, and a database that
cannot be reached (503).
"""

from __future__ import annotations

import re
from typing import Any

from starlette.routing import Route
from starlette.types import Scope, Send

from libs.common.auth import Principal
from libs.common.auth import Scope as CredentialScope
from libs.common.driver import DIRECT_READ_ERRORS, DirectReads, DirectStatement
from libs.common.logging import get_logger
from libs.common.prerouting import PreRoutingAnswers
from services.shipping_api.shipments.access import REASON_HEADER
from services.shipping_api.shipments.document import shipment_document
from services.shipping_api.shipments.endpoints import router as shipments_router
from services.shipping_api.shipments.repository import DOCUMENT_OF_ACCOUNT

PREFIX = shipments_router.prefix + "/"
# The metrics and the request log label an answer with its route's template, as if routed.
ROUTE = next(
    r
    for r in shipments_router.routes
    if isinstance(r, Route) and r.path == PREFIX + "{shipment_id}" and "GET" in (r.methods or ())
)
STATEMENT = DirectStatement(DOCUMENT_OF_ACCOUNT)
_CANONICAL_UUID = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)
_REASON = REASON_HEADER.lower().encode()
_READ = CredentialScope.SHIPMENTS_READ.value

log = get_logger("shipments.fastpath")


class DirectShipmentReads(PreRoutingAnswers):
    prefix = PREFIX
    route = ROUTE

    async def answer(self, scope: Scope, send: Send) -> bool:
        shipment_id = scope["path"][len(PREFIX) :]
        if not _CANONICAL_UUID.fullmatch(shipment_id):
            return False
        principal = (scope.get("state") or {}).get("principal")
        if (
            not isinstance(principal, Principal)
            or not principal.is_account_holder
            or _READ not in principal.scopes
            or any(name == _REASON for name, _ in scope["headers"])
        ):
            return False
        reads: DirectReads = scope["app"].state.direct_reads
        params: dict[str, Any] = {
            "shipment_id": shipment_id.lower(),
            "account_id": principal.account_id,
        }
        try:
            rows = await reads.fetch(STATEMENT, params)
        except DIRECT_READ_ERRORS as exc:
            log.warning("direct read failed; routed instead", error=type(exc).__name__)
            return False
        if not rows:
            return False
        await self.send_json(scope, send, shipment_document(rows))
        return True
