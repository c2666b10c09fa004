"""The reference of every run: a bare FastAPI "hello world" served exactly like the services
(uvicorn, uvloop, httptools, one worker), with and without the request-log middleware."""

from __future__ import annotations

import functools
import ipaddress

from fastapi import FastAPI
from fastapi.telemetry import TelemetryConfig

from libs.common.app import NO_OPENTELEMETRY, ServiceApp, settle_garbage_collector
from libs.common.logging import RequestLogMiddleware, configure_logging


def create_hello(*, telemetry: TelemetryConfig | None = None) -> FastAPI:
    """FastAPI's defaults, as a bare hello world has them (the reference)."""
    return _with_hello(
        FastAPI(docs_url=None, redoc_url=None, openapi_url=None, telemetry=telemetry)
    )


def _with_hello(app: FastAPI) -> FastAPI:
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
    """The same, with the request log installed as every service has it: the outermost layer,
    in the place of Starlette's error layer, whose work it does (``ServiceApp``)."""
    configure_logging("bench")
    app = _with_hello(
        ServiceApp(
            request_log=functools.partial(
                RequestLogMiddleware,
                service="bench",
                trusted_proxies=[ipaddress.ip_network("127.0.0.0/8")],
            ),
            docs_url=None,
            redoc_url=None,
            openapi_url=None,
            telemetry=NO_OPENTELEMETRY,
        )
    )
    settle_garbage_collector()
    return app
