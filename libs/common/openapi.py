"""OpenAPI documents: problem responses everywhere, local Swagger UI, and the merged document
the gateway serves for all services."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

from libs.common.auth import BEARER_SCHEME, OPTIONAL_BEARER_SCHEME
from libs.common.errors import PROBLEM_CONTENT_TYPE, FieldError, Problem

PROBLEM_REF = "#/components/schemas/Problem"
PUBLIC_PREFIXES = ("/v1/", "/.well-known/")


def _problem_schemas() -> dict[str, Any]:
    schema = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    defs = schema.pop("$defs", {})
    return {"Problem": schema, **defs, "FieldError": FieldError.model_json_schema()}


def _uses_ref(document: Any, ref: str) -> bool:
    if isinstance(document, dict):
        return any(v == ref if k == "$ref" else _uses_ref(v, ref) for k, v in document.items())
    if isinstance(document, list):
        return any(_uses_ref(item, ref) for item in document)
    return False


def _document_optional_auth(document: dict[str, Any], operation: dict[str, Any]) -> None:
    """Routes that take credentials but do not need them: "bearer, or nothing"."""
    security = operation.get("security")
    if not security:
        return
    required = [entry for entry in security if OPTIONAL_BEARER_SCHEME not in entry]
    if required:
        operation["security"] = required
    else:
        operation["security"] = [{BEARER_SCHEME: []}, {}]
    schemes = document.setdefault("components", {}).setdefault("securitySchemes", {})
    if OPTIONAL_BEARER_SCHEME in schemes:
        schemes.setdefault(BEARER_SCHEME, schemes[OPTIONAL_BEARER_SCHEME])


CREATED_HEADERS = {
    "Location": {
        "description": "The path of the resource just created; `GET` it to read it again.",
        "required": True,
        "schema": {"type": "string", "format": "uri-reference"},
    }
}
"""Every ``201`` names what it created (RFC 9110 15.3.2)."""
RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before trying again.",
        "schema": {"type": "integer", "minimum": 1},
    }
}
RETRY_STATUSES = ("429", "503")

RATE_LIMITED = {"description": "Too many requests from this account or address; see `Retry-After`."}
DATABASE_UNAVAILABLE = {
    "description": "The database is unavailable for a moment (a restart or failover); retry "
    "after `Retry-After`."
}
AUTH_UPSTREAM = {
    502: {"description": "Identity answered wrongly while the credential was checked."},
    503: {
        "description": "Identity, which checks credentials, or the database is unavailable for "
        "a moment; retry after `Retry-After`."
    },
    504: {"description": "Identity, which checks credentials, did not answer in time."},
}


def _document_shared_statuses(
    path: str, operation: dict[str, Any], *, checks_credentials_upstream: bool
) -> None:
    """Statuses every public route can answer besides its own (libs.common.ratelimit,
    libs.common.auth, a database away: decision 0650), so no route returns a status its
    document does not list; the ones a client should retry say when (``Retry-After``)."""
    responses = operation.setdefault("responses", {})
    if checks_credentials_upstream and operation.get("security"):
        for upstream_status, response in AUTH_UPSTREAM.items():
            responses.setdefault(str(upstream_status), dict(response))
    if path.startswith(PUBLIC_PREFIXES):
        responses.setdefault("429", dict(RATE_LIMITED))
        responses.setdefault("503", dict(DATABASE_UNAVAILABLE))
    if "201" in responses:
        responses["201"] = {**responses["201"], "headers": dict(CREATED_HEADERS)}
    for status in RETRY_STATUSES:
        if status in responses:
            responses[status] = {**responses[status], "headers": dict(RETRY_AFTER)}


def problemize(
    document: dict[str, Any], *, checks_credentials_upstream: bool = False
) -> dict[str, Any]:
    """Every error response is ``application/problem+json`` with the Problem schema, optional
    credentials are documented as optional, and the statuses every route shares are listed.

    ``checks_credentials_upstream``: the service asks identity to check credentials (JWKS,
    API-key introspection), so a secured route can also answer 502, 503 or 504."""
    components = document.setdefault("components", {}).setdefault("schemas", {})
    components.update(_problem_schemas())
    for path, path_item in document.get("paths", {}).items():
        for operation in path_item.values():
            if not isinstance(operation, dict):
                continue
            _document_optional_auth(document, operation)
            _document_shared_statuses(
                path, operation, checks_credentials_upstream=checks_credentials_upstream
            )
            for status, response in operation.get("responses", {}).items():
                if str(status).isdigit() and int(status) >= 400:
                    response["content"] = {PROBLEM_CONTENT_TYPE: {"schema": {"$ref": PROBLEM_REF}}}
    document["components"].get("securitySchemes", {}).pop(OPTIONAL_BEARER_SCHEME, None)
    for unused in ("HTTPValidationError", "ValidationError"):
        if unused in components and not _uses_ref(document, f"#/components/schemas/{unused}"):
            del components[unused]
    return document


def operation_link(
    method: str, path: str, parameters: Mapping[str, str], description: str
) -> dict[str, Any]:
    """An OpenAPI link from a response to the operation ``method path`` (RFC 6901 reference),
    e.g. from a created object to reading it: clients and schemathesis' stateful tests follow
    them. ``parameters`` maps the target's parameters to runtime expressions."""
    pointer = path.replace("~", "~0").replace("/", "~1")
    return {
        "operationRef": f"#/paths/{pointer}/{method.lower()}",
        "parameters": dict(parameters),
        "description": description,
    }


def install_openapi(
    app: FastAPI,
    *,
    servers: list[dict[str, str]] | None = None,
    checks_credentials_upstream: bool = False,
) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
                tags=app.openapi_tags,
                servers=servers,
            )
            app.openapi_schema = problemize(
                document, checks_credentials_upstream=checks_credentials_upstream
            )
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def swagger_html(*, title: str, openapi_url: str, assets_url: str) -> str:
    return f"""<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>{title}</title>
  <link rel="stylesheet" href="{assets_url}/swagger-ui.css">
  <link rel="icon" href="{assets_url}/favicon-32x32.png">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="{assets_url}/swagger-ui-bundle.js"></script>
  <script src="{assets_url}/swagger-ui-standalone-preset.js"></script>
  <script src="{assets_url}/swagger-initializer-parcelpro.js"></script>
</body>
</html>
"""


def swagger_initializer(openapi_url: str) -> str:
    # Kept out of the HTML so the gateway can send a strict Content-Security-Policy.
    return (
        "window.onload = function () {\n"
        "  window.ui = SwaggerUIBundle({\n"
        f"    url: '{openapi_url}', dom_id: '#swagger-ui', deepLinking: true,\n"
        "    presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],\n"
        "    layout: 'StandaloneLayout', persistAuthorization: false\n"
        "  });\n};\n"
    )


def mount_docs(app: FastAPI, *, openapi_url: str = "/openapi.json") -> None:
    """``/docs`` with Swagger UI served from the installed package (no CDN)."""
    html = swagger_html(title=app.title, openapi_url=openapi_url, assets_url="/docs/assets")
    initializer = swagger_initializer(openapi_url)

    # Registered before the static mount, so they match first.
    @app.get("/docs/assets/swagger-initializer-parcelpro.js", include_in_schema=False)
    async def _initializer() -> HTMLResponse:
        return HTMLResponse(initializer, media_type="text/javascript")

    @app.get("/docs", include_in_schema=False)
    async def _docs() -> HTMLResponse:
        return HTMLResponse(html)

    app.mount("/docs/assets", StaticFiles(directory=str(swagger_ui_path)), name="docs-assets")


def _rewrite_refs(document: Any, renames: Mapping[str, str]) -> Any:
    if isinstance(document, dict):
        out = {}
        for key, value in document.items():
            if key == "$ref" and isinstance(value, str):
                name = value.rsplit("/", 1)[-1]
                out[key] = f"#/components/schemas/{renames.get(name, name)}"
            else:
                out[key] = _rewrite_refs(value, renames)
        return out
    if isinstance(document, list):
        return [_rewrite_refs(item, renames) for item in document]
    return document


def merge_documents(
    documents: Mapping[str, dict[str, Any]], *, title: str, version: str, description: str
) -> dict[str, Any]:
    """One document of the public routes of all services (what the gateway routes)."""
    merged: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version, "description": description},
        "paths": {},
        "components": {"schemas": {}, "securitySchemes": {}},
        "tags": [],
    }
    schemas = merged["components"]["schemas"]
    seen_tags: set[str] = set()
    for service, original in documents.items():
        document = copy.deepcopy(original)
        renames = {
            name: f"{service.title()}{name}"
            for name, schema in document.get("components", {}).get("schemas", {}).items()
            if name in schemas and schemas[name] != schema
        }
        document = _rewrite_refs(document, renames)
        for name, schema in document.get("components", {}).get("schemas", {}).items():
            schemas[renames.get(name, name)] = schema
        for name, scheme in document.get("components", {}).get("securitySchemes", {}).items():
            merged["components"]["securitySchemes"].setdefault(name, scheme)
        for path, item in document.get("paths", {}).items():
            if not path.startswith(PUBLIC_PREFIXES):
                continue
            if path in merged["paths"]:
                raise ValueError(f"{path} is served by two services")
            merged["paths"][path] = item
        for tag in document.get("tags", []) or []:
            if tag["name"] not in seen_tags:
                seen_tags.add(tag["name"])
                merged["tags"].append(tag)
    merged["paths"] = dict(sorted(merged["paths"].items()))
    used = {name for name in schemas if _uses_ref(merged["paths"], f"#/components/schemas/{name}")}
    # Keep schemas referenced (directly or through other schemas) from the public paths.
    frontier = set(used)
    while frontier:
        name = frontier.pop()
        for other in schemas:
            if other not in used and _uses_ref(schemas[name], f"#/components/schemas/{other}"):
                used.add(other)
                frontier.add(other)
    merged["components"]["schemas"] = {k: v for k, v in sorted(schemas.items()) if k in used}
    return merged
