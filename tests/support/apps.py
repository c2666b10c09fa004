"""Running a service's app in-process for a test: lifespan started, HTTP client attached."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from libs.common.app import Overrides


@asynccontextmanager
async def running(
    create_app: Callable[..., FastAPI],
    settings: Any,
    overrides: Overrides,
    *,
    base_url: str = "http://testserver",
    client_address: tuple[str, int] = ("203.0.113.7", 50000),
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    app = create_app(settings, overrides)
    async with LifespanManager(app, startup_timeout=30, shutdown_timeout=30) as manager:
        transport = httpx.ASGITransport(app=manager.app, client=client_address)
        async with httpx.AsyncClient(transport=transport, base_url=base_url) as client:
            yield app, client
