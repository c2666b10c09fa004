"""Which backend answers a request path: under a Caddyfile's routes and under an Ingress's rules.

Only what the gateway's configuration uses is modelled: ``handle`` / ``handle_path`` blocks with a
literal path or a named ``path`` matcher, ``reverse_proxy {$<SERVICE>_UPSTREAM...}`` inside them
(anything else a ``handle`` answers is the gateway itself), and the catch-all ``handle``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

GATEWAY = "gateway"
_UPSTREAM = re.compile(r"reverse_proxy\s+\{\$([A-Z]+)_UPSTREAM")


@dataclass(frozen=True)
class CaddyRoute:
    pattern: str
    backend: str

    @property
    def is_prefix(self) -> bool:
        return self.pattern.endswith("*")

    def matches(self, path: str) -> bool:
        if self.is_prefix:
            return path.startswith(self.pattern[:-1])
        return path == self.pattern


def _snippet(text: str, name: str) -> list[str]:
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == f"({name}) {{")
    depth = 0
    body: list[str] = []
    for line in lines[start:]:
        depth += line.count("{") - line.count("}")
        body.append(line)
        if depth == 0:
            return body[1:-1]
    raise ValueError(f"snippet ({name}) is not closed")


def caddy_routes(path: Path, snippet: str = "common") -> tuple[list[CaddyRoute], str]:
    """The path routes of a Caddyfile's snippet, and the backend of its catch-all ``handle``."""
    lines = _snippet(path.read_text(encoding="utf-8"), snippet)
    matchers: dict[str, list[str]] = {}
    routes: list[CaddyRoute] = []
    default = ""
    index = 0
    while index < len(lines):
        tokens = lines[index].split()
        index += 1
        if not tokens:
            continue
        if tokens[0].startswith("@") and len(tokens) > 2 and tokens[1] == "path":
            matchers[tokens[0]] = tokens[2:]
            continue
        if tokens[0] not in {"handle", "handle_path"} or tokens[-1] != "{":
            continue
        block: list[str] = []
        depth = 1
        while depth:
            line = lines[index]
            index += 1
            depth += line.count("{") - line.count("}")
            block.append(line)
        upstream = _UPSTREAM.search("\n".join(block))
        backend = upstream.group(1).lower() if upstream else GATEWAY
        matcher = tokens[1] if len(tokens) == 3 else None
        if matcher is None:
            default = backend
        elif matcher.startswith("/"):
            routes.append(CaddyRoute(matcher, backend))
        elif matcher in matchers:
            routes.extend(CaddyRoute(pattern, backend) for pattern in matchers[matcher])
        # Other named matchers (request size, expressions) are not path routes.
    return routes, default


def caddy_backend(routes: list[CaddyRoute], default: str, path: str) -> str:
    """Caddy sorts path-matched ``handle`` blocks most specific first; they never overlap else."""
    exact = [route for route in routes if not route.is_prefix and route.matches(path)]
    if exact:
        return exact[0].backend
    prefixes = sorted(
        (route for route in routes if route.is_prefix and route.matches(path)),
        key=lambda route: len(route.pattern),
        reverse=True,
    )
    return prefixes[0].backend if prefixes else default


@dataclass(frozen=True)
class IngressPath:
    path: str
    path_type: str
    backend: str

    def matches(self, request_path: str) -> bool:
        if self.path_type == "Exact":
            return request_path == self.path
        if self.path_type != "Prefix":
            raise ValueError(f"pathType {self.path_type} is not portable")
        rule = [part for part in self.path.split("/") if part]
        request = [part for part in request_path.split("/") if part]
        return request[: len(rule)] == rule


def ingress_paths(ingress: dict[str, Any]) -> tuple[list[IngressPath], str | None]:
    spec = ingress["spec"]
    paths = [
        IngressPath(item["path"], item["pathType"], item["backend"]["service"]["name"])
        for rule in spec["rules"]
        for item in rule["http"]["paths"]
    ]
    default = spec.get("defaultBackend", {}).get("service", {}).get("name")
    return paths, default


def ingress_backend(paths: list[IngressPath], default: str | None, request_path: str) -> str | None:
    """Kubernetes' rule: an Exact match first, else the longest matching Prefix, else default."""
    for item in paths:
        if item.path_type == "Exact" and item.matches(request_path):
            return item.backend
    prefixes = sorted(
        (item for item in paths if item.path_type == "Prefix" and item.matches(request_path)),
        key=lambda item: len(item.path.rstrip("/")),
        reverse=True,
    )
    return prefixes[0].backend if prefixes else default
