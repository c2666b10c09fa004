"""Walking the services' own OpenAPI documents: operations, request bodies, response schemas,
with ``$ref`` resolved, for tests generated from what the services document."""

from __future__ import annotations

from collections.abc import Iterator
from functools import cache
from typing import Any

from services.gateway.openapi import service_documents

METHODS = ("get", "put", "post", "patch", "delete")
SERVICES = ("identity", "shipping", "privacy")


@cache
def documents() -> dict[str, dict[str, Any]]:
    return service_documents()


def operations(service: str) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in documents()[service]["paths"].items():
        for method in METHODS:
            if method in item:
                yield method.upper(), path, item[method]


def resolve(service: str, schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = documents()[service]["components"]["schemas"][name]
    return schema


def json_body(service: str, operation: dict[str, Any]) -> dict[str, Any] | None:
    content = operation.get("requestBody", {}).get("content", {})
    if "application/json" not in content:
        return None
    schema = resolve(service, content["application/json"]["schema"])
    # An optional body (``Model | None``) is documented as anyOf [Model, null].
    variants = [resolve(service, v) for v in schema.get("anyOf", []) if v != {"type": "null"}]
    return variants[0] if len(variants) == 1 else schema


def subschemas(service: str, schema: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every schema reachable from ``schema`` (resolved), with its dotted location."""
    seen: set[int] = set()

    def walk(where: str, node: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
        node = resolve(service, node)
        if id(node) in seen:
            return
        seen.add(id(node))
        yield where, node
        for name, child in node.get("properties", {}).items():
            yield from walk(f"{where}.{name}" if where else name, child)
        if isinstance(node.get("items"), dict):
            yield from walk(f"{where}[]", node["items"])
        if isinstance(node.get("additionalProperties"), dict):
            yield from walk(f"{where}{{}}", node["additionalProperties"])
        for key in ("anyOf", "oneOf", "allOf"):
            for child in node.get(key, []):
                yield from walk(where, child)

    yield from walk("", schema)


def success_schemas(service: str, operation: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for status, response in operation.get("responses", {}).items():
        if not str(status).startswith("2"):
            continue
        for media in response.get("content", {}).values():
            if "schema" in media:
                yield resolve(service, media["schema"])
