"""Running shipping_api in-process for a test, with per-request state as uvicorn gives it.

``asgi_lifespan`` hands every request the *same* lifespan-state dict, so whatever one request
puts on ``request.state`` (the authenticated principal, the request id) would leak into the
next. Servers copy that dict per request; this runner does the same.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from libs.common.app import Overrides


def per_request_state(app: ASGIApp, state: dict[str, Any]) -> ASGIApp:
    async def app_with_own_state(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in {"http", "websocket"}:
            scope = {**scope, "state": dict(state)}
        await app(scope, receive, send)

    return app_with_own_state


@asynccontextmanager
async def running_shipping(
    create_app: Callable[..., FastAPI],
    settings: Any,
    overrides: Overrides,
    *,
    base_url: str = "http://testserver",
    client_address: tuple[str, int] = ("203.0.113.7", 50000),
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    app = create_app(settings, overrides)
    async with LifespanManager(app, startup_timeout=30, shutdown_timeout=30) as manager:
        # The lifespan state dict the manager collected, copied into each request's scope.
        state: dict[str, Any] = manager._state
        transport = httpx.ASGITransport(app=per_request_state(app, state), client=client_address)
        async with httpx.AsyncClient(transport=transport, base_url=base_url) as client:
            yield app, client
