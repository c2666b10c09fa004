"""RFC 9457 problem details: the one error format of every service.

Services raise :class:`DomainError` subclasses; the handlers installed by
:func:`install_error_handlers` turn them, validation errors and plain HTTP errors into
``application/problem+json``. Stack traces are logged, never returned.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import orjson
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import iter_route_contexts
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.routing import compile_path

from libs.common.db import is_database_unavailable

PROBLEM_CONTENT_TYPE = "application/problem+json"
PROBLEM_BASE = "https://docs.parcelpro.nl/problems/"
DATABASE_RETRY_AFTER_SECONDS = 2
"""A database restart or failover takes seconds; clients are told to come back that soon."""

log = structlog.get_logger("errors")


class FieldError(BaseModel):
    field: str = Field(description="Dotted path of the offending field, e.g. `recipient.postcode`.")
    location: str = Field(description="Where the field was sent: body, query, path or header.")
    message: str
    type: str = Field(description="Machine-readable error code.")


class Problem(BaseModel):
    """An RFC 9457 problem document."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "type": PROBLEM_BASE + "not-found",
                    "title": "Not found",
                    "status": 404,
                    "detail": "No shipment with this id.",
                    "instance": "/v1/shipments/0190f6e2-7d3c-7cc4-b1b4-0b1f5e0c9a11",
                    "request_id": "0190f6e2-7d3c-7cc4-b1b4-0b1f5e0c9a12",
                }
            ]
        }
    )

    type: str = Field(description="URI identifying the problem type.")
    title: str
    status: int
    detail: str | None = None
    instance: str | None = Field(None, description="The request path that caused the problem.")
    request_id: str | None = Field(None, description="Quote this when contacting support.")
    errors: list[FieldError] | None = Field(None, description="Per-field validation errors.")


class DomainError(Exception):
    """Base of all errors that map to a problem response."""

    status: ClassVar[int] = 400
    slug: ClassVar[str] = "bad-request"
    title: ClassVar[str] = "Bad request"

    def __init__(
        self,
        detail: str | None = None,
        *,
        errors: Sequence[FieldError] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail or self.title)
        self.detail = detail
        self.errors = list(errors) if errors else None
        self.headers = dict(headers or {})


class NotFound(DomainError):
    status, slug, title = 404, "not-found", "Not found"


class AccountNotFound(NotFound):
    """No account with this id (never was, or erased): an answer of identity's internal routes
    that callers act on, told apart from a 404 of a route the caller got wrong."""

    slug, title = "account-not-found", "Account not found"


class Conflict(DomainError):
    status, slug, title = 409, "conflict", "Conflict"


class Unauthorized(DomainError):
    status, slug, title = 401, "unauthorized", "Authentication required"

    def __init__(self, detail: str | None = None, **kwargs: Any) -> None:
        super().__init__(detail, **kwargs)
        self.headers.setdefault("WWW-Authenticate", 'Bearer realm="parcelpro"')


class Forbidden(DomainError):
    status, slug, title = 403, "forbidden", "Forbidden"


class ValidationFailed(DomainError):
    status, slug, title = 422, "validation-failed", "Validation failed"

    @classmethod
    def for_field(
        cls, field: str, message: str, *, location: str = "body", type_: str = "value_error"
    ) -> ValidationFailed:
        return cls(
            f"{field}: {message}",
            errors=[FieldError(field=field, location=location, message=message, type=type_)],
        )


class PayloadTooLarge(DomainError):
    status, slug, title = 413, "payload-too-large", "Request body too large"


class TooManyRequests(DomainError):
    status, slug, title = 429, "too-many-requests", "Too many requests"

    def __init__(self, retry_after: int, detail: str | None = None) -> None:
        super().__init__(detail, headers={"Retry-After": str(max(1, retry_after))})
        self.retry_after = max(1, retry_after)


class BadGateway(DomainError):
    status, slug, title = 502, "bad-gateway", "A service we depend on answered wrongly"


class ServiceUnavailable(DomainError):
    status, slug, title = 503, "service-unavailable", "Service temporarily unavailable"


class GatewayTimeout(DomainError):
    status, slug, title = 504, "gateway-timeout", "A service we depend on did not answer in time"


_HTTP_TITLES = {
    400: "Bad request",
    401: "Authentication required",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    406: "Not acceptable",
    409: "Conflict",
    411: "Length required",
    413: "Request body too large",
    415: "Unsupported media type",
    422: "Validation failed",
    429: "Too many requests",
    500: "Internal server error",
    502: "Bad gateway",
    503: "Service temporarily unavailable",
    504: "Gateway timeout",
}


def problem_body(
    *,
    status: int,
    title: str | None = None,
    detail: str | None = None,
    type_: str | None = None,
    instance: str | None = None,
    request_id: str | None = None,
    errors: Sequence[FieldError] | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": type_ or "about:blank",
        "title": title or _HTTP_TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
        "instance": instance,
        "request_id": request_id,
    }
    if errors is not None:
        body["errors"] = [e.model_dump() for e in errors]
    return body


def problem_response(
    status: int, body: dict[str, Any], headers: Mapping[str, str] | None = None
) -> Response:
    return Response(
        content=orjson.dumps(body),
        status_code=status,
        media_type=PROBLEM_CONTENT_TYPE,
        headers=dict(headers or {}),
    )


def _request_context(request: Request) -> tuple[str, str | None]:
    state = request.scope.get("state") or {}
    return request.url.path, state.get("request_id")


def _field_path(loc: Sequence[int | str]) -> tuple[str, str]:
    location = str(loc[0]) if loc else "body"
    rest = [str(part) for part in loc[1:]]
    if location not in {"body", "query", "path", "header", "cookie"}:
        return "body", ".".join(str(part) for part in loc)
    return location, ".".join(rest) or location


def validation_errors(raw_errors: Sequence[Any]) -> list[FieldError]:
    errors: list[FieldError] = []
    for err in raw_errors:
        location, field = _field_path(err.get("loc", ()))
        message = str(err.get("msg", "invalid value"))
        errors.append(FieldError(field=field, location=location, message=message, type=err["type"]))
    return errors


@dataclass(frozen=True, slots=True)
class _RoutePattern:
    regex: re.Pattern[str]
    methods: frozenset[str]
    is_static: bool


def _route_patterns(app: Any) -> list[_RoutePattern]:
    patterns: list[_RoutePattern] | None = getattr(app.state, "route_patterns", None)
    if patterns is None:
        patterns = []
        for route in iter_route_contexts(app.routes):
            if not route.methods or route.path is None:
                continue
            regex, _, convertors = compile_path(route.path)
            patterns.append(_RoutePattern(regex, frozenset(route.methods), not convertors))
        app.state.route_patterns = patterns
    return patterns


def allowed_methods(request: Request) -> list[str]:
    """The methods this path answers, for ``Allow`` (RFC 9110 15.5.6).

    Routers only report the first route whose path matches; a path served by several routes
    (``GET`` and ``PATCH`` of one resource) must list all of them. A static path outranks a
    parameter: ``/v1/shipments/bulk`` is not a shipment id.
    """
    matching = [p for p in _route_patterns(request.app) if p.regex.match(request.url.path)]
    static = [p for p in matching if p.is_static]
    methods: set[str] = set()
    for pattern in static or matching:
        methods |= pattern.methods
    return sorted(methods)


def static_methods(app: Any) -> dict[str, frozenset[str]]:
    table: dict[str, frozenset[str]] | None = getattr(app.state, "static_route_methods", None)
    if table is None:
        table = {}
        for route in iter_route_contexts(app.routes):
            if route.methods and route.path and "{" not in route.path:
                table[route.path] = table.get(route.path, frozenset()) | frozenset(route.methods)
        app.state.static_route_methods = table
    return table


def _method_not_allowed(request: Request, allowed: Sequence[str]) -> Response:
    path, request_id = _request_context(request)
    body = problem_body(status=405, instance=path, request_id=request_id)
    return problem_response(405, body, {"Allow": ", ".join(allowed)})


async def problem_for_exception(request: Request, exc: Exception) -> Response:
    """The problem response for a domain error or an HTTP error (outside a route, too)."""
    if isinstance(exc, DomainError):
        return await _handle_domain_error(request, exc)
    return await _handle_http_exception(request, exc)


async def _handle_domain_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, DomainError)  # noqa: S101 - registered for DomainError only
    path, request_id = _request_context(request)
    body = problem_body(
        status=exc.status,
        title=exc.title,
        detail=exc.detail,
        type_=PROBLEM_BASE + exc.slug,
        instance=path,
        request_id=request_id,
        errors=exc.errors,
    )
    return problem_response(exc.status, body, exc.headers)


def _invalid_json(request: Request, message: str) -> Response:
    """A body that is not JSON: one problem naming the body, whatever part of the parsing
    failed (not UTF-8 text, or not JSON)."""
    path, request_id = _request_context(request)
    error = FieldError(field="body", location="body", message=message, type="json_invalid")
    body = problem_body(
        status=422,
        title=ValidationFailed.title,
        detail=f"body: {message}",
        type_=PROBLEM_BASE + ValidationFailed.slug,
        instance=path,
        request_id=request_id,
        errors=[error],
    )
    return problem_response(422, body)


def _json_decode_message(exc: RequestValidationError) -> str | None:
    """FastAPI reports a JSON syntax error as one error at ``("body", <character offset>)``;
    the line and column of that offset are what a developer looks for in the body sent."""
    for err in exc.errors():
        loc = err.get("loc", ())
        if err.get("type") != "json_invalid" or len(loc) != 2 or not isinstance(loc[1], int):
            continue
        document = exc.body if isinstance(exc.body, str) else ""
        offset = loc[1]
        line = document.count("\n", 0, offset) + 1
        column = offset - document.rfind("\n", 0, offset)
        reason = (err.get("ctx") or {}).get("error")
        where = f"not valid JSON at line {line}, column {column}"
        return f"{where}: {reason}" if reason else where
    return None


async def _handle_validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)  # noqa: S101
    json_message = _json_decode_message(exc)
    if json_message is not None:
        return _invalid_json(request, json_message)
    path, request_id = _request_context(request)
    errors = validation_errors(exc.errors())
    detail = "; ".join(f"{e.field}: {e.message}" for e in errors[:5]) or None
    body = problem_body(
        status=422,
        title=ValidationFailed.title,
        detail=detail,
        type_=PROBLEM_BASE + ValidationFailed.slug,
        instance=path,
        request_id=request_id,
        errors=errors,
    )
    return problem_response(422, body)


_BODY_PARSE_ERROR = "There was an error parsing the body"


async def _handle_http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)  # noqa: S101
    path, request_id = _request_context(request)
    if exc.status_code == 400 and exc.detail == _BODY_PARSE_ERROR:
        # FastAPI's answer to a JSON body it could not parse for another reason than syntax.
        if isinstance(exc.__cause__, UnicodeDecodeError):
            return _invalid_json(request, "not valid JSON: not UTF-8 text")
        return _invalid_json(request, "not valid JSON")
    if exc.status_code == 405:
        allowed = allowed_methods(request)
        if allowed:
            return _method_not_allowed(request, allowed)
    detail: str | None = exc.detail if isinstance(exc.detail, str) else None
    if detail == _HTTP_TITLES.get(exc.status_code) or detail in {"Not Found", "Method Not Allowed"}:
        detail = None
    body = problem_body(status=exc.status_code, detail=detail, instance=path, request_id=request_id)
    return problem_response(exc.status_code, body, exc.headers)


async def _handle_database_error(request: Request, exc: Exception) -> Response:
    """The database down, restarting or out of connections is a 503 the client may retry; any
    other database error is a bug and stays an unexpected failure (500, logged in full)."""
    if not is_database_unavailable(exc):
        raise exc
    path, request_id = _request_context(request)
    root: BaseException = exc
    while root.__cause__ is not None:
        root = root.__cause__
    # Class names only: a database error's message can quote statement parameters.
    log.warning(
        "database_unavailable",
        request_id=request_id,
        path=path,
        error=type(exc).__name__,
        cause=type(root).__name__,
    )
    body = problem_body(
        status=503,
        title=ServiceUnavailable.title,
        detail="The database is briefly unavailable; retry shortly.",
        type_=PROBLEM_BASE + ServiceUnavailable.slug,
        instance=path,
        request_id=request_id,
    )
    return problem_response(503, body, {"Retry-After": str(DATABASE_RETRY_AFTER_SECONDS)})


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(DomainError, _handle_domain_error)
    app.add_exception_handler(RequestValidationError, _handle_validation_error)
    app.add_exception_handler(StarletteHTTPException, _handle_http_exception)
    app.add_exception_handler(SQLAlchemyError, _handle_database_error)


def internal_error_body(path: str, request_id: str | None) -> bytes:
    """The body sent for an unexpected failure: nothing about the failure itself."""
    return orjson.dumps(
        problem_body(
            status=500,
            type_=PROBLEM_BASE + "internal-error",
            detail="Something went wrong on our side. Quote the request_id when you contact us.",
            instance=path,
            request_id=request_id,
        )
    )


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` entries for these error statuses.

    The schema and media type (``application/problem+json``) are filled in for every error
    response by :func:`libs.common.openapi.install_openapi`.
    """
    return {status: {"description": _HTTP_TITLES.get(status, "Error")} for status in statuses}
