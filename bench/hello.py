"""The reference of every run: a bare FastAPI "hello world" served exactly like the services
(uvicorn, uvloop, httptools, one worker), with and without the request-log middleware."""

from __future__ import annotations

import ipaddress

from fastapi import FastAPI
from fastapi.telemetry import TelemetryConfig

from libs.common.app import NO_OPENTELEMETRY, settle_garbage_collector
from libs.common.logging import RequestLogMiddleware, configure_logging


def create_hello(*, telemetry: TelemetryConfig | None = None) -> FastAPI:
    """FastAPI's defaults, as a bare hello world has them (the reference)."""
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None, telemetry=telemetry)

    @app.get("/hello")
    async def hello() -> dict[str, str]:
        return {"hello": "world"}

    return app


def create_hello_settled() -> FastAPI:
    """The endpoint in a process set up as a service's is: its start-up objects frozen out of
    the garbage collector's view (``settle_garbage_collector``) and FastAPI's OpenTelemetry
    off (``NO_OPENTELEMETRY``)."""
    app = create_hello(telemetry=NO_OPENTELEMETRY)
    settle_garbage_collector()
    return app


def create_hello_logged() -> FastAPI:
    """The same, behind the request-log middleware, as every service has it."""
    configure_logging("bench")
    app = create_hello(telemetry=NO_OPENTELEMETRY)
    app.add_middleware(
        RequestLogMiddleware,
        service="bench",
        trusted_proxies=[ipaddress.ip_network("127.0.0.0/8")],
    )
    settle_garbage_collector()
    return app
