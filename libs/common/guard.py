"""What every request passes before routing, as one pure ASGI middleware: a method the path
does not serve is a 405, the public API is rate-limited per account or address (OWASP API4),
and text that cannot be stored is a 422 naming the field.

These were app-wide FastAPI dependencies; measured, each dependency costs tens of
microseconds per request in FastAPI's resolver, about as much as a whole hello-world request.
"""

from __future__ import annotations

import json
import re
from typing import Any

from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from libs.common.errors import DomainError, ValidationFailed, problem_for_exception, static_methods
from libs.common.prerouting import buffer_body, replaying
from libs.common.ratelimit import enforce_api_rate_limit
from libs.common.validation import UNSTORABLE, first_unstorable

UNSTORABLE_MESSAGE = "contains a character that cannot be stored (NUL or an unpaired surrogate)"
# Escapes in a JSON body that could decode to NUL or a surrogate; a body without them (nearly
# every body) is not parsed here.
_SUSPECT_JSON = re.compile(rb"\\u(?:0000|[dD][89a-fA-F])")
_SUSPECT_FORM = re.compile(rb"%(?:00|[eE][dD])")


class ApiGuardMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        try:
            self._refuse_other_methods(scope)
            await enforce_api_rate_limit(request)
            receive = await self._refuse_unstorable_text(scope, receive)
        except (DomainError, StarletteHTTPException) as exc:
            response = await problem_for_exception(request, exc)
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)

    @staticmethod
    def _refuse_other_methods(scope: Scope) -> None:
        """``GET /v1/shipments/bulk`` is a 405, not "shipment 'bulk'" — whether or not it
        carries credentials, and before any body or parameter is read."""
        static = static_methods(scope["app"]).get(scope["path"])
        if static and scope["method"] not in static:
            raise StarletteHTTPException(405, headers={"Allow": ", ".join(sorted(static))})

    async def _refuse_unstorable_text(self, scope: Scope, receive: Receive) -> Receive:
        """PostgreSQL cannot store NUL and UTF-8 cannot encode an unpaired surrogate: refused
        up front (422 naming the field) instead of failing in the database (500)."""
        if UNSTORABLE.search(scope["path"]):
            raise ValidationFailed.for_field("path", UNSTORABLE_MESSAGE, location="path")
        if scope.get("query_string"):
            for name, value in Request(scope).query_params.multi_items():
                if UNSTORABLE.search(name) or UNSTORABLE.search(value):
                    raise ValidationFailed.for_field(name, UNSTORABLE_MESSAGE, location="query")
        content_type = _header(scope, b"content-type")
        is_json = content_type.startswith(b"application/json")
        is_form = content_type.startswith(b"application/x-www-form-urlencoded")
        if not (is_json or is_form):
            return receive
        body, replay = await buffer_body(receive)
        if body is None:
            return replay  # the client left; the route finds out when it reads the body
        suspect = (_SUSPECT_JSON if is_json else _SUSPECT_FORM).search(body)
        if suspect is None:
            return replay
        if is_json:
            try:
                # The standard library, not orjson: it reads lone surrogates instead of refusing.
                parsed: Any = json.loads(body)
            except ValueError:
                return replay  # not JSON at all: the route's own validation says so
        else:
            form = await Request(scope, replaying(body, receive)).form()
            parsed = dict(form.multi_items())
        field = first_unstorable(parsed, "")
        if field is not None:
            raise ValidationFailed.for_field(field or "body", UNSTORABLE_MESSAGE)
        return replay


def _header(scope: Scope, name: bytes) -> bytes:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value).lower()
    return b""
