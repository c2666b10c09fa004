"""Prometheus metrics of one service: requests by route template and status, latencies, the
database pool, the request-log sink, and gauges a service computes from its own database when
Prometheus scrapes ``/metrics``.

Labels carry route templates (``/v1/shipments/{shipment_id}``), never raw paths: a raw path holds
ids and, for tracking codes or e-mail look-ups, personal data, and it would make the number of
series unbounded. Every app has its own ``CollectorRegistry``, so several apps in one process
(tests, benchmarks) never share or clash over metrics.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request, Response
from prometheus_client import (
    CONTENT_TYPE_PLAIN_0_0_4,
    GC_COLLECTOR,
    CollectorRegistry,
    Counter,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from starlette.types import Scope

if TYPE_CHECKING:
    from libs.common.db import Database
    from libs.common.driver import DirectStatements
    from libs.common.request_log import RequestLogSink

UNMATCHED_ROUTE = "unmatched"
"""Route label of requests no route matched (their raw path is never a label)."""

_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# Requests of a trivial endpoint take ~1 ms; label exports and bulk calls take seconds.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

GaugeValue = float | Mapping[tuple[str, ...], float]
GaugeQuery = Callable[[AsyncSession], Awaitable[GaugeValue]]


@dataclass(frozen=True)
class DatabaseGauge:
    """A gauge computed from the service's database when Prometheus scrapes.

    ``query`` receives a read-only session and returns one number, or, when ``labelnames`` is
    given, a mapping of label values to numbers, e.g. pending privacy tasks by type::

        async def pending_tasks(session: AsyncSession) -> dict[tuple[str, ...], float]:
            rows = await session.execute(
                select(Task.kind, func.count()).where(Task.done_at.is_(None)).group_by(Task.kind)
            )
            return {(kind,): count for kind, count in rows}

        DatabaseGauge("privacy_pending_tasks", "Tasks not yet done", pending_tasks, ("kind",))
    """

    name: str
    documentation: str
    query: GaugeQuery
    labelnames: tuple[str, ...] = ()


def outbox_gauges(
    backlog: GaugeQuery, oldest_due: GaugeQuery, failed: GaugeQuery | None = None
) -> tuple[DatabaseGauge, ...]:
    """The outbox gauges every service reports under the same names, labelled by ``outbox``
    (decision 0804); each service supplies the queries over its own outbox tables."""
    gauges = [
        DatabaseGauge(
            "outbox_backlog",
            "Messages waiting to be sent (retries included).",
            backlog,
            ("outbox",),
        ),
        DatabaseGauge(
            "outbox_oldest_due_seconds",
            "How long the longest-waiting due message has been due; growing means nothing sends.",
            oldest_due,
            ("outbox",),
        ),
    ]
    if failed is not None:
        gauges.append(
            DatabaseGauge(
                "outbox_failed", "Messages given up on, kept until purged.", failed, ("outbox",)
            )
        )
    return tuple(gauges)


def _status_class(status: int) -> str:
    return f"{status // 100}xx"


class Metrics:
    """The metrics of one app, in a registry of its own."""

    def __init__(
        self,
        service: str,
        *,
        version: str = "",
        gauge_cache_seconds: float = 5.0,
        gauge_timeout_seconds: float = 3.0,
    ) -> None:
        self.service = service
        self.registry = CollectorRegistry(auto_describe=True)
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        self.registry.register(GC_COLLECTOR)
        self.requests = Counter(
            "http_requests",
            "HTTP requests answered, by method, route template and status code.",
            ("method", "route", "status"),
            registry=self.registry,
        )
        self.latency = Histogram(
            "http_request_duration_seconds",
            "Time from receiving a request to the end of its response, by method, route "
            "template and status class.",
            ("method", "route", "status_class"),
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.gauge_cache_seconds = gauge_cache_seconds
        self.gauge_timeout_seconds = gauge_timeout_seconds
        self.database: Database | None = None
        self.request_log_sink: RequestLogSink | None = None
        self.direct: DirectStatements | None = None
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        self._gauges: dict[str, DatabaseGauge] = {}
        self._gauge_values: dict[str, dict[tuple[str, ...], float]] = {}
        self._gauge_errors: dict[str, int] = {}
        self._gauges_refreshed_at: float | None = None
        self._refresh_lock = asyncio.Lock()
        self.registry.register(_ServiceCollector(self, version))

    # -- hot path ------------------------------------------------------------------------------

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count one answered request; the labelled children are looked up once per label set."""
        key = (method, route, status)
        children = self._children.get(key)
        if children is None:
            method_label = method if method in _METHODS else "OTHER"
            children = (
                self.requests.labels(method_label, route, str(status)),
                self.latency.labels(method_label, route, _status_class(status)),
            )
            self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def observe_request(self, scope: Scope, status: int, seconds: float) -> None:
        """What the request-log middleware reports of each HTTP request (one layer measures
        it for both). The route is read from the ``route`` the router put into the scope, so
        the label is always a template, never a path with identifiers in it."""
        route = getattr(scope.get("route"), "path", None) or UNMATCHED_ROUTE
        self.observe(scope["method"], route, status, seconds)

    # -- wiring --------------------------------------------------------------------------------

    def bind(
        self,
        database: Database | None,
        request_log_sink: RequestLogSink | None = None,
        direct: DirectStatements | None = None,
    ) -> None:
        """Attach what the app builds in its lifespan (and detach it with ``None``)."""
        self.database = database
        self.request_log_sink = request_log_sink
        self.direct = direct

    def add_database_gauge(self, gauge: DatabaseGauge) -> None:
        if gauge.name in self._gauges:
            raise ValueError(f"database gauge {gauge.name!r} is registered twice")
        self._gauges[gauge.name] = gauge

    # -- scrape --------------------------------------------------------------------------------

    async def refresh_database_gauges(self, *, force: bool = False) -> None:
        """Run the gauge queries, at most once per ``gauge_cache_seconds`` however many scrape."""
        if not self._gauges or self.database is None:
            return
        async with self._refresh_lock:
            now = time.monotonic()
            fresh = (
                self._gauges_refreshed_at is not None
                and now - self._gauges_refreshed_at < self.gauge_cache_seconds
            )
            if fresh and not force:
                return
            for gauge in self._gauges.values():
                await self._refresh(gauge, self.database)
            self._gauges_refreshed_at = time.monotonic()

    async def _refresh(self, gauge: DatabaseGauge, database: Database) -> None:
        try:
            async with asyncio.timeout(self.gauge_timeout_seconds):
                async with database.sessionmaker() as session:
                    value = await gauge.query(session)
                    await session.rollback()
        except Exception:
            # A slow or failing query must not fail the scrape: the gauge goes missing (which
            # an alert on absent() notices) and the error is counted.
            self._gauge_values.pop(gauge.name, None)
            self._gauge_errors[gauge.name] = self._gauge_errors.get(gauge.name, 0) + 1
            return
        if isinstance(value, Mapping):
            self._gauge_values[gauge.name] = {tuple(k): float(v) for k, v in value.items()}
        else:
            self._gauge_values[gauge.name] = {(): float(value)}

    async def render(self) -> bytes:
        await self.refresh_database_gauges()
        return generate_latest(self.registry)


class _ServiceCollector(Collector):
    """Values read at scrape time: pool usage, direct statements, request-log sink, database
    gauges."""

    def __init__(self, metrics: Metrics, version: str) -> None:
        self.metrics = metrics
        self.version = version

    def collect(self) -> Iterable[Metric]:
        metrics = self.metrics
        info = GaugeMetricFamily(
            "parcelpro_service_info", "The service and its version.", labels=["service", "version"]
        )
        info.add_metric([metrics.service, self.version], 1.0)
        yield info
        yield from self._pool()
        yield from self._direct()
        sink = metrics.request_log_sink
        if sink is not None:
            yield _one(
                CounterMetricFamily,
                "request_log_entries_written",
                "Request-log entries stored in the database.",
                sink.written,
            )
            yield _one(
                CounterMetricFamily,
                "request_log_entries_dropped",
                "Request-log entries not stored (queue full or database failing).",
                sink.dropped,
            )
            yield _one(
                GaugeMetricFamily,
                "request_log_queue_length",
                "Request-log entries waiting to be stored.",
                sink.queue.qsize(),
            )
        for name, gauge in metrics._gauges.items():
            family = GaugeMetricFamily(name, gauge.documentation, labels=list(gauge.labelnames))
            for labels, value in metrics._gauge_values.get(name, {}).items():
                family.add_metric(list(labels), value)
            yield family
        if metrics._gauges:
            errors = CounterMetricFamily(
                "database_gauge_errors",
                "Scrape-time database gauge queries that failed or timed out.",
                labels=["gauge"],
            )
            for name in metrics._gauges:
                errors.add_metric([name], float(metrics._gauge_errors.get(name, 0)))
            yield errors

    def _direct(self) -> Iterable[Metric]:
        direct = self.metrics.direct
        if direct is None or not direct.available:
            return
        yield _one(
            GaugeMetricFamily,
            "db_direct_connections",
            "Open asyncpg connections of the statements sent without the ORM.",
            direct.size,
        )
        yield _one(
            CounterMetricFamily,
            "db_direct_writes",
            "Writes sent without the ORM (shipment creates), alone or together.",
            direct.writes_sent,
        )
        yield _one(
            CounterMetricFamily,
            "db_direct_write_round_trips",
            "Round trips (and transactions) that carried those writes; writes per round trip is "
            "how many went together.",
            direct.write_round_trips,
        )

    def _pool(self) -> Iterable[Metric]:
        database = self.metrics.database
        bind = database.bind if database is not None else None
        if not isinstance(bind, AsyncEngine):
            return
        pool = bind.sync_engine.pool
        if not all(hasattr(pool, name) for name in ("size", "checkedout", "checkedin")):
            return
        yield _one(
            GaugeMetricFamily,
            "db_pool_size",
            "Connections the pool keeps open.",
            pool.size(),  # type: ignore[attr-defined]
        )
        yield _one(
            GaugeMetricFamily,
            "db_pool_max_overflow",
            "Connections the pool may open beyond its size.",
            getattr(pool, "_max_overflow", 0),
        )
        connections = GaugeMetricFamily(
            "db_pool_connections", "Open connections by state.", labels=["state"]
        )
        connections.add_metric(["in_use"], float(pool.checkedout()))  # type: ignore[attr-defined]
        connections.add_metric(["idle"], float(pool.checkedin()))  # type: ignore[attr-defined]
        yield connections


def _one(
    family: type[GaugeMetricFamily | CounterMetricFamily],
    name: str,
    documentation: str,
    value: float,
) -> Metric:
    """A metric of one unlabelled sample."""
    metric = family(name, documentation)
    metric.add_metric([], float(value))
    return metric


def build_metrics_router() -> APIRouter:
    """``GET /metrics`` in Prometheus' text format; not part of the OpenAPI document."""
    router = APIRouter()

    @router.get("/metrics", include_in_schema=False)
    async def metrics(request: Request) -> Response:
        registry: Metrics = request.app.state.metrics
        return Response(await registry.render(), media_type=CONTENT_TYPE_PLAIN_0_0_4)

    return router
