"""The reference: a bare FastAPI "hello world" on the same uvicorn setup as the services, and the
same endpoint behind the request-log middleware (to price the middleware)."""

from __future__ import annotations

import ipaddress
import os

from fastapi import FastAPI

from libs.common.logging import RequestLogMiddleware, configure_logging


def create_hello() -> FastAPI:
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/hello")
    async def hello() -> dict[str, str]:
        return {"hello": "world"}

    return app


def create_hello_logged() -> FastAPI:
    configure_logging("bench", os.environ.get("LOG_LEVEL", "INFO"))
    app = create_hello()
    app.add_middleware(
        RequestLogMiddleware,
        service="bench",
        trusted_proxies=[ipaddress.ip_network("127.0.0.0/8")],
    )
    return app


def create_hello_passthrough() -> FastAPI:
    app = create_hello()

    class Passthrough:
        def __init__(self, app: object) -> None:
            self.app = app

        async def __call__(self, scope: object, receive: object, send: object) -> None:
            await self.app(scope, receive, send)  # type: ignore[operator]

    app.add_middleware(Passthrough)
    return app


def create_hello_logged_noconf() -> FastAPI:
    app = create_hello()
    app.add_middleware(
        RequestLogMiddleware,
        service="bench",
        trusted_proxies=[ipaddress.ip_network("127.0.0.0/8")],
    )
    return app
