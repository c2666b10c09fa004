"""``/metrics``: requests by route template and status, pool and sink gauges, database gauges."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, FastAPI
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.app import Overrides, ServiceDefinition, build_app
from libs.common.db import Database
from libs.common.metrics import DatabaseGauge, Metrics
from services.identity_api.app import MIGRATIONS_DIR
from services.identity_api.models import RequestLog
from services.identity_api.settings import IdentitySettings
from tests.support.apps import running
from tests.support.db import on_postgres, rolled_back

things = APIRouter()


@things.get("/v1/things/{thing_id}")
async def read_thing(thing_id: str) -> dict[str, str]:
    return {"id": thing_id}


@things.post("/v1/things", status_code=201)
async def create_thing() -> dict[str, str]:
    return {"id": "new"}


@things.get("/v1/broken")
async def broken() -> None:
    raise RuntimeError("boom")


def _app_factory(gauges: tuple[DatabaseGauge, ...] = ()) -> Any:
    def create_app(settings: IdentitySettings, overrides: Overrides) -> FastAPI:
        definition = ServiceDefinition(
            settings=settings,
            title="Metrics test",
            description="An app with a templated route.",
            version="9.9.9",
            routers=[things],
            request_log_model=RequestLog,
            migrations_dir=MIGRATIONS_DIR,
            database_gauges=gauges,
        )
        return build_app(definition, overrides)

    return create_app


@asynccontextmanager
async def metrics_app(
    settings: IdentitySettings, *gauges: DatabaseGauge, own_engine: bool = False
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    if own_engine:
        async with running(_app_factory(gauges), settings, Overrides()) as (app, client):
            yield app, client
        return
    factory = _app_factory(gauges)
    async with (
        rolled_back(settings) as database,
        running(factory, settings, Overrides(database=database)) as (app, client),
    ):
        yield app, client


async def scrape(client: httpx.AsyncClient) -> dict[str, list[tuple[dict[str, str], float]]]:
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((sample.labels, sample.value))
    return samples


def value(
    samples: dict[str, list[tuple[dict[str, str], float]]], name: str, **labels: str
) -> float:
    matches = [v for found, v in samples.get(name, []) if labels.items() <= found.items()]
    assert matches, f"no sample {name} with {labels}; have {samples.get(name)}"
    return sum(matches)


async def test_requests_are_counted_by_route_template_never_by_raw_path(
    identity_settings: IdentitySettings,
) -> None:
    async with metrics_app(identity_settings) as (_app, client):
        for thing in ("jan@example.nl", "3SABCD1234567", "jan@example.nl"):
            assert (await client.get(f"/v1/things/{thing}")).status_code == 200
        assert (await client.post("/v1/things")).status_code == 201
        response = await client.get("/metrics")

    assert "jan@example.nl" not in response.text
    assert "3SABCD1234567" not in response.text
    samples = {
        (s.labels["method"], s.labels["route"], s.labels["status"]): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
        if s.name == "http_requests_total"
    }
    assert samples[("GET", "/v1/things/{thing_id}", "200")] == 3
    assert samples[("POST", "/v1/things", "201")] == 1


async def test_unknown_paths_and_failures_are_counted_without_their_path(
    identity_settings: IdentitySettings,
) -> None:
    async with metrics_app(identity_settings) as (_app, client):
        assert (await client.get("/v1/nothing/here/jan@example.nl")).status_code == 404
        assert (await client.get("/v1/broken")).status_code == 500
        assert (await client.request("BREW", "/v1/things/1")).status_code == 405
        response = await client.get("/metrics")
        samples = await scrape(client)

    assert "jan@example.nl" not in response.text
    assert value(samples, "http_requests_total", route="unmatched", status="404") == 1
    assert value(samples, "http_requests_total", route="/v1/broken", status="500") == 1
    # Made-up methods share one label value, so a client cannot mint new series.
    assert value(samples, "http_requests_total", method="OTHER", status="405") == 1
    assert (
        value(
            samples, "http_request_duration_seconds_count", route="/v1/broken", status_class="5xx"
        )
        == 1
    )


async def test_latency_histogram_observes_each_request(
    identity_settings: IdentitySettings,
) -> None:
    async with metrics_app(identity_settings) as (_app, client):
        for _ in range(4):
            await client.get("/v1/things/1")
        samples = await scrape(client)

    labels = {"route": "/v1/things/{thing_id}", "status_class": "2xx"}
    assert value(samples, "http_request_duration_seconds_count", **labels) == 4
    assert value(samples, "http_request_duration_seconds_bucket", le="+Inf", **labels) == 4
    assert value(samples, "http_request_duration_seconds_sum", **labels) > 0


async def test_metrics_route_is_not_in_the_openapi_document(
    identity_settings: IdentitySettings,
) -> None:
    async with metrics_app(identity_settings) as (_app, client):
        document = (await client.get("/openapi.json")).json()
    assert "/metrics" not in document["paths"]
    assert "/v1/things/{thing_id}" in document["paths"]


async def test_two_apps_in_one_process_keep_their_own_counts(
    identity_settings: IdentitySettings,
) -> None:
    # One rolled-back connection for both apps: SQLite allows one writer at a time.
    factory = _app_factory()
    async with (
        rolled_back(identity_settings) as database,
        running(factory, identity_settings, Overrides(database=database)) as (_, first),
        running(factory, identity_settings, Overrides(database=database)) as (_, second),
    ):
        for _ in range(3):
            await first.get("/v1/things/1")
        await second.get("/v1/things/1")
        first_samples = await scrape(first)
        second_samples = await scrape(second)

    assert value(first_samples, "http_requests_total", route="/v1/things/{thing_id}") == 3
    assert value(second_samples, "http_requests_total", route="/v1/things/{thing_id}") == 1


async def test_service_info_and_request_log_sink_are_reported(
    identity_settings: IdentitySettings,
) -> None:
    settings = identity_settings.model_copy(update={"request_log_to_db": True})
    async with metrics_app(settings) as (_app, client):
        samples = await scrape(client)
    assert value(samples, "parcelpro_service_info", service="identity", version="9.9.9") == 1
    assert value(samples, "request_log_entries_dropped_total") == 0
    assert "request_log_queue_length" in samples


async def test_database_pool_usage_is_reported_when_the_app_owns_its_engine(
    identity_settings: IdentitySettings,
) -> None:
    async with metrics_app(identity_settings, own_engine=True) as (_app, client):
        assert (await client.get("/readyz")).status_code == 200
        samples = await scrape(client)
    assert value(samples, "db_pool_connections", state="in_use") == 0
    assert value(samples, "db_pool_connections", state="idle") >= 1
    assert value(samples, "db_pool_size") >= 1


async def test_direct_statements_are_reported_where_they_exist(
    identity_settings: IdentitySettings,
) -> None:
    """Statements sent without the ORM exist on PostgreSQL only; elsewhere there is nothing to
    report (the shipping tests count real writes)."""
    async with metrics_app(identity_settings) as (_app, client):
        samples = await scrape(client)
    if on_postgres():
        assert value(samples, "db_direct_connections") == 0
        assert value(samples, "db_direct_writes_total") == 0
        assert value(samples, "db_direct_write_round_trips_total") == 0
    else:
        assert not any(name.startswith("db_direct") for name in samples)


async def _request_log_rows(session: AsyncSession) -> float:
    return float(await session.scalar(select(func.count()).select_from(RequestLog)) or 0)


async def test_database_gauges_are_computed_from_the_database_at_scrape_time(
    identity_settings: IdentitySettings,
) -> None:
    gauge = DatabaseGauge("identity_request_log_rows", "Stored entries.", _request_log_rows)
    async with metrics_app(identity_settings, gauge) as (app, client):
        metrics: Metrics = app.state.metrics
        database: Database = app.state.database
        before = value(await scrape(client), "identity_request_log_rows")
        async with database.sessionmaker() as session:
            session.add(
                RequestLog(
                    ip="203.0.113.7",
                    timestamp=metrics_now(),
                    duration_ms=1.0,
                    method="GET",
                    path="/v1/accounts/me",
                    status=200,
                    request_size=0,
                    response_size=10,
                    request_id="r-1",
                    service="identity",
                    account_id=uuid.uuid4(),
                )
            )
            await session.commit()
        # Within the cache window the stored value is served; a forced refresh reads anew.
        assert value(await scrape(client), "identity_request_log_rows") == before
        await metrics.refresh_database_gauges(force=True)
        assert value(await scrape(client), "identity_request_log_rows") == before + 1


async def test_a_failing_database_gauge_is_counted_and_never_fails_the_scrape(
    identity_settings: IdentitySettings,
) -> None:
    async def broken_query(session: AsyncSession) -> float:
        await session.execute(text("SELECT * FROM no_such_table"))
        return 1.0

    async def by_status(session: AsyncSession) -> dict[tuple[str, ...], float]:
        return {("open",): 2.0, ("closed",): 5.0}

    async with metrics_app(
        identity_settings,
        DatabaseGauge("broken_gauge", "Always fails.", broken_query),
        DatabaseGauge("tasks", "Tasks by status.", by_status, ("status",)),
    ) as (_app, client):
        samples = await scrape(client)

    assert "broken_gauge" not in samples
    assert value(samples, "database_gauge_errors_total", gauge="broken_gauge") == 1
    assert value(samples, "database_gauge_errors_total", gauge="tasks") == 0
    assert value(samples, "tasks", status="open") == 2
    assert value(samples, "tasks", status="closed") == 5


def test_registering_a_database_gauge_twice_is_refused() -> None:
    metrics = Metrics("identity")
    gauge = DatabaseGauge("rows", "Rows.", _request_log_rows)
    metrics.add_database_gauge(gauge)
    with pytest.raises(ValueError, match="registered twice"):
        metrics.add_database_gauge(gauge)


def metrics_now() -> Any:
    from libs.common.db import utcnow

    return utcnow()
