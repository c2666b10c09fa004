"""The application factory every service's ``create_app`` is built on.

It wires what all services share — settings, database, request log, problem responses,
authentication, outgoing HTTP and mail, health routes, docs — and leaves the routes and any
background work to the service.
"""

from __future__ import annotations

import contextlib
import functools
import gc
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from fastapi import APIRouter, FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.middleware.cors import CORSMiddleware
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.telemetry import TelemetryConfig
from starlette.middleware.errors import ServerErrorMiddleware
from starlette.types import ASGIApp

from libs.common.auth import (
    Authenticator,
    HttpApiKeyResolver,
    HttpJwksKeySource,
    HttpStaffChecker,
    ServiceTokenProvider,
)
from libs.common.clock import Clock
from libs.common.db import Database, create_engine
from libs.common.driver import DirectStatements
from libs.common.errors import install_error_handlers
from libs.common.guard import ApiGuardMiddleware
from libs.common.health import build_health_router
from libs.common.http import ServiceCaller, create_http_client
from libs.common.idempotency import REPLAY_HEADER
from libs.common.logging import (
    RequestLogMiddleware,
    RequestLogWriter,
    configure_logging,
    get_logger,
)
from libs.common.mail import Mailer, mailer_from_settings
from libs.common.metrics import DatabaseGauge, Metrics, build_metrics_router
from libs.common.openapi import install_openapi, mount_docs
from libs.common.ratelimit import RateLimiter
from libs.common.request_log import RequestLogMixin, RequestLogSink
from libs.common.revisions import head_revisions
from libs.common.settings import BaseServiceSettings

Lifespan = Callable[[FastAPI], contextlib.AbstractAsyncContextManager[None]]


@dataclass
class ServiceDefinition:
    """What a service contributes to the shared factory."""

    settings: BaseServiceSettings
    title: str
    description: str
    version: str
    routers: Sequence[APIRouter]
    request_log_model: type[RequestLogMixin]
    migrations_dir: Path
    openapi_tags: list[dict[str, Any]] = field(default_factory=list)
    build_authenticator: Callable[[FastAPI], Authenticator] | None = None
    """Identity verifies its own tokens and keys; the others ask identity over HTTP."""
    lifespans: Sequence[Lifespan] = ()
    """Background work started after the shared parts and stopped before them."""
    database_gauges: Sequence[DatabaseGauge] = ()
    """Gauges computed from the service's database when Prometheus scrapes ``/metrics``."""
    middleware: Sequence[type[Any]] = ()
    """Pure ASGI middleware (classes taking the app) run inside the shared ones, just before
    routing, outermost first."""


@dataclass
class Overrides:
    """Parts a test (or a benchmark) supplies instead of building them from settings."""

    database: Database | None = None
    http_transport: httpx.AsyncBaseTransport | None = None
    clock: Clock | None = None
    mailer: Mailer | None = None
    authenticator: Authenticator | None = None
    on_started: Callable[[FastAPI], None] | None = None
    """Called at the end of start-up, e.g. to replace a collaborator on ``app.state``."""


NO_OPENTELEMETRY: TelemetryConfig = {
    "tracing": False,
    "metrics": False,
    "logs": False,
    "operation_spans": False,
}
"""FastAPI's built-in OpenTelemetry, off: the services log and count their requests themselves
(the request log, ``/metrics``). Left on, with no provider configured, it still asked the
global providers on every request whether one had been set since (environment look-ups and
context reads): about 250 of the ~3,000 bytecodes of a hello-world request."""

GC_THRESHOLDS = (20_000, 20, 20)
"""Young collections every 20,000 net allocations instead of 700: a request allocates
thousands of objects that die with it (docs/decisions/0701-performance-budget.md)."""


def settle_garbage_collector() -> None:
    """What start-up built (modules, routes, models, settings) lives as long as the process:
    it is moved out of the collector's view, so a full collection walks only what requests
    made. Measured under load: full collections of the whole heap took ~140 ms each, about a
    sixth of the process's CPU time."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


CORS_REQUEST_HEADERS = ("Authorization", "X-Request-ID")
"""Request headers read outside the routes' parameters (the bearer scheme, the request log);
the headers routes declare (``Idempotency-Key``, ``X-Access-Reason``, ...) are added per app."""
CORS_EXPOSED_HEADERS = (
    "X-Request-ID",
    "Location",
    "Retry-After",
    REPLAY_HEADER,
    "Content-Disposition",
)
"""Response headers a browser client reads besides the CORS-safelisted ones (``Content-Type``,
``Cache-Control``, ...): the file name of a label or export comes in ``Content-Disposition``."""


def _header_parameters(dependant: Dependant) -> Iterator[str]:
    for parameter in dependant.header_params:
        yield parameter.alias
    for dependency in dependant.dependencies:
        yield from _header_parameters(dependency)


def cors_request_headers(app: FastAPI) -> list[str]:
    """Every request header a browser client may need to send: the ones the routes declare as
    parameters, so a route taking a new header cannot be unreachable from the web app."""
    declared = {
        name
        for context in iter_route_contexts(app.routes)
        if isinstance(context.route, APIRoute)
        for name in _header_parameters(context.route.dependant)
    }
    return sorted(set(CORS_REQUEST_HEADERS) | declared, key=str.lower)


class ServiceApp(FastAPI):
    """FastAPI with the request log as the outermost layer of every request.

    Starlette puts its ``ServerErrorMiddleware`` outside all added middleware to turn an
    unhandled exception into a 500. The request log does that already (a problem response
    with the request id, the error logged once), so on every request that outer layer only
    passed the request and each response message through once more: about 7,100 of some
    364,000 instructions of a hello-world request (docs/decisions/0702-request-log-cost.md).
    The request log takes its place. Handlers for ``500``/``Exception`` never ran in front
    of the request log anyway; tracebacks (``debug``) never leave a service.
    """

    def __init__(self, *, request_log: Callable[[ASGIApp], ASGIApp], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.request_log = request_log

    def build_middleware_stack(self) -> ASGIApp:
        stack = super().build_middleware_stack()
        if isinstance(stack, ServerErrorMiddleware):
            stack = stack.app
        return self.request_log(stack)


class _DeferredSink:
    """The middleware exists before the lifespan creates the real sink."""

    def __init__(self) -> None:
        self.target: RequestLogSink | None = None

    def submit(self, record: dict[str, Any]) -> None:
        if self.target is not None:
            self.target.submit(record)


def build_app(definition: ServiceDefinition, overrides: Overrides | None = None) -> FastAPI:
    settings = definition.settings
    overrides = overrides or Overrides()
    service = settings.service_name
    sink = _DeferredSink()
    request_log_writer = RequestLogWriter()
    metrics = Metrics(service, version=definition.version)
    for gauge in definition.database_gauges:
        metrics.add_database_gauge(gauge)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging(service, settings.log_level)
        log = get_logger("lifespan")
        database = overrides.database or Database(
            create_engine(
                settings.database_url,
                schema=settings.db_schema,
                application_name=f"parcelpro-{service}",
                pool_size=settings.db_pool_size,
                max_overflow=settings.db_max_overflow,
            )
        )
        http = create_http_client(
            service=service,
            timeout_seconds=settings.http_timeout_seconds,
            transport=overrides.http_transport,
        )
        identity = ServiceCaller(http, base_url=settings.identity_url, name="identity")
        service_tokens = ServiceTokenProvider(
            identity,
            client_id=settings.service_client_id,
            client_secret=settings.service_client_secret,
        )
        app.state.settings = settings
        app.state.database = database
        app.state.direct = DirectStatements(
            database,
            schema=settings.db_schema,
            application_name=f"parcelpro-{service}-direct",
            max_size=settings.db_direct_pool_size,
        )
        app.state.http = http
        app.state.clock = overrides.clock or Clock()
        app.state.mailer = overrides.mailer or mailer_from_settings(
            settings.smtp_url, var_dir=settings.var_dir, sender=settings.mail_from
        )
        app.state.rate_limiter = RateLimiter.from_url(settings.redis_url, namespace=service)
        app.state.migration_heads = head_revisions(definition.migrations_dir)
        app.state.identity = identity
        app.state.service_tokens = service_tokens
        if overrides.authenticator is not None:
            app.state.authenticator = overrides.authenticator
        elif definition.build_authenticator is not None:
            app.state.authenticator = definition.build_authenticator(app)
        else:
            app.state.authenticator = Authenticator(
                key_source=HttpJwksKeySource(identity),
                api_keys=HttpApiKeyResolver(
                    identity, service_tokens, ttl_seconds=settings.api_key_cache_seconds
                ),
                issuer=settings.jwt_issuer,
                staff=HttpStaffChecker(identity, service_tokens),
            )
        request_log_sink: RequestLogSink | None = None
        if settings.request_log_to_db:
            request_log_sink = RequestLogSink(
                database.sessionmaker,
                definition.request_log_model,
                batch_size=settings.request_log_batch_size,
                flush_seconds=settings.request_log_flush_seconds,
            )
            await request_log_sink.start()
            sink.target = request_log_sink
        app.state.request_log_sink = request_log_sink
        metrics.bind(database, request_log_sink, app.state.direct)
        try:
            async with contextlib.AsyncExitStack() as stack:
                for extra in definition.lifespans:
                    await stack.enter_async_context(extra(app))
                if overrides.on_started is not None:
                    overrides.on_started(app)
                if settings.environment != "test":
                    # In-process test apps come and go in one interpreter: frozen, each one's
                    # objects would be kept for good.
                    settle_garbage_collector()
                log.info("started", port=settings.port, database=database.dialect_name)
                yield
        finally:
            metrics.bind(None)
            sink.target = None
            if request_log_sink is not None:
                await request_log_sink.stop()
            await http.aclose()
            await app.state.direct.close()
            await database.dispose()
            request_log_writer.flush()
            log.info("stopped")

    app = ServiceApp(
        # The outermost layer: it sees every request and response, and measures each once
        # for the log and the metrics.
        request_log=functools.partial(
            RequestLogMiddleware,
            service=service,
            trusted_proxies=settings.trusted_proxies,
            sink=sink,
            writer=request_log_writer,
            observe=metrics.observe_request,
        ),
        title=definition.title,
        description=definition.description,
        version=definition.version,
        openapi_tags=definition.openapi_tags or None,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json" if settings.docs_enabled else None,
        telemetry=NO_OPENTELEMETRY,
    )
    app.state.metrics = metrics
    install_error_handlers(app)
    install_openapi(app, checks_credentials_upstream=definition.build_authenticator is None)
    if settings.docs_enabled:
        mount_docs(app)
    app.include_router(build_health_router(service))
    app.include_router(build_metrics_router())
    for router in definition.routers:
        app.include_router(router)
    for middleware in reversed(definition.middleware):
        app.add_middleware(middleware)
    # Innermost of the shared ones: CORS preflights are answered before it.
    app.add_middleware(ApiGuardMiddleware)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_credentials=True,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=cors_request_headers(app),
            expose_headers=list(CORS_EXPOSED_HEADERS),
            max_age=600,
        )
    return app
