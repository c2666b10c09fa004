"""The benchmark scenarios, each measured against a reference taken in the same run (targets
from the performance issue; results and commands in docs/performance.md)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import json
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from bench.instructions import callgrind_available, instructions_per_request
from bench.platform import BenchPlatform, bench_platform
from bench.report import Result
from bench.servers import ROOT, Served, rss_megabytes, uvicorn_app
from bench.wrk import LoadResult, rotating_lua, run_wrk
from tests.support.metrics import direct_writes
from tests.support.platform import shipment_payload, wait_for_status


@dataclass
class Run:
    seconds: int
    hello_url: str = ""
    """The reference, served for the whole run."""
    platform: BenchPlatform | None = None
    _last_hello: float | None = None

    def hello(self) -> float:
        result = run_wrk(f"{self.hello_url}/hello", seconds=self.seconds)
        self._last_hello = result.rps
        return result.rps

    def beside_hello(self, measure: Callable[[], LoadResult]) -> tuple[LoadResult, float]:
        """``measure``'s load and the reference for it: the mean of hello world measured just
        before and just after, so that a machine whose speed drifts over the minutes of a run
        (shared hosts do) does not shift the ratio. Scenarios measured one after another share
        the measurement between them."""
        before = self._last_hello if self._last_hello is not None else self.hello()
        result = measure()
        return result, (before + self.hello()) / 2

    def moved_on(self) -> None:
        """Something else ran since the last reference: the next one is measured afresh."""
        self._last_hello = None


def hello(run: Run) -> list[Result]:
    run_wrk(f"{run.hello_url}/hello", seconds=2)
    result = run_wrk(f"{run.hello_url}/hello", seconds=run.seconds)
    return [
        Result(
            "hello world (reference)",
            f"{result.rps:,.0f} req/s, p99 {result.p99_ms:.1f} ms (the platform's ratios use "
            "hello world measured beside each of them)",
            result.rps,
            "reference",
            True,
        )
    ]


Measured = TypeVar("Measured")


def _alternating_pairs(
    loads: dict[str, Callable[[], Measured]], count: int
) -> list[dict[str, Measured]]:
    """``count`` pairs of the two ``loads``, run in turn in an order that alternates (a-b,
    b-a, ...), so that the host's load of the moment weighs on both sides alike; each pair maps
    the loads' names to what they measured."""
    first, second = loads
    pairs: list[dict[str, Measured]] = []
    for pair in range(count):
        order = (first, second) if pair % 2 == 0 else (second, first)
        pairs.append({name: loads[name]() for name in order})
    return pairs


PROCESSES_PER_SIDE = 3
"""Servers started for each side of the request log's comparison. Identical processes of one
server differ by several percent in CPU time per request, for as long as they run (four of the
same hello world: 74.9-81.1 us, medians of ten alternating loads each): with one process a side,
that luck of the draw would be part of the measured difference."""


def request_log_cost(run: Run) -> list[Result]:
    """The request-log middleware on vs off, same endpoint: at most 5 % throughput cost.

    Both servers are set up as a service's process is (garbage collector settled; the request log
    installed as ``ServiceApp`` installs it). On a shared host two runs of the same process
    differ by up to a quarter in requests per second, and the host's load changes over tens of
    seconds; so ``PROCESSES_PER_SIDE`` processes of each are started once and loaded in turn, in
    ten pairs of short slices whose order alternates (off-on, on-off, ...), each pair on the next
    process of either side, and the cost is the median of the pairs' ``1 - on / off``. Each line
    also shows the server's CPU time per request, the quantity the throughput of a CPU-bound
    server follows.
    """
    seconds = max(2, run.seconds // 4)
    factories = {"off": "bench.hello:create_hello_settled", "on": "bench.hello:create_hello_logged"}
    with contextlib.ExitStack() as stack:
        sides = {
            side: [stack.enter_context(uvicorn_app(factory)) for _ in range(PROCESSES_PER_SIDE)]
            for side, factory in factories.items()
        }
        for group in sides.values():
            for served in group:
                run_wrk(f"{served.url}/hello", seconds=1)

        def measure(group: list[Served]) -> Callable[[], tuple[float, float]]:
            turns = itertools.cycle(group)

            def load() -> tuple[float, float]:
                served = next(turns)
                before = served.cpu_seconds()
                result = run_wrk(f"{served.url}/hello", seconds=seconds)
                cpu = served.cpu_seconds() - before
                return result.rps, cpu / result.requests * 1e6

            return load

        pairs = _alternating_pairs({side: measure(group) for side, group in sides.items()}, 10)
    cost = statistics.median(1 - pair["on"][0] / pair["off"][0] for pair in pairs)
    results = [
        Result(
            "request-log middleware cost",
            f"median of {len(pairs)} pairs, {PROCESSES_PER_SIDE} processes a side; req/s "
            "with/without: "
            + ", ".join(f"{pair['on'][0]:,.0f}/{pair['off'][0]:,.0f}" for pair in pairs)
            + "; CPU us per request with/without: "
            + ", ".join(f"{pair['on'][1]:.0f}/{pair['off'][1]:.0f}" for pair in pairs),
            cost,
            "<= 0.05",
            cost <= 0.05,
        )
    ]
    if callgrind_available():
        without = instructions_per_request("bench.hello:create_hello_settled")
        with_log = instructions_per_request("bench.hello:create_hello_logged")
        results.append(
            Result(
                "request-log instructions",
                f"user-space instructions per request under uvicorn with/without: "
                f"{with_log:,.0f}/{without:,.0f} (callgrind; the host's load does not move them)",
                with_log / without - 1,
                "(counted)",
                None,
            )
        )
    return results


def _ratio(name: str, result: LoadResult, reference: float, target: float, what: str) -> Result:
    ratio = result.rps / reference if reference else 0.0
    errors = result.server_errors + result.socket_errors
    return Result(
        name,
        f"{result.rps:,.0f} req/s vs {what} {reference:,.0f}; p99 {result.p99_ms:.1f} ms; "
        f"{errors} errors",
        ratio,
        f">= {target}",
        ratio >= target and errors == 0,
    )


def tracking(run: Run) -> list[Result]:
    platform = _platform(run)
    paths = [f"/v1/tracking/{s['tracking_code']}" for s in platform.shipments]
    direct_url = platform.stack.service_url("shipping")
    lua = rotating_lua(paths)
    run_wrk(direct_url + paths[0], seconds=2, lua=lua)
    direct, reference = run.beside_hello(
        lambda: run_wrk(direct_url + paths[0], seconds=run.seconds, lua=lua)
    )
    run.moved_on()
    # Through the gateway against direct: both are the platform's, so they are loaded in turn,
    # in pairs of short slices whose order alternates, and the ratio is the median of the
    # pairs' (one load of each, one after the other, moved between 0.40 and 0.74 with the
    # host's load of the moment).
    seconds = max(2, run.seconds // 4)
    urls = {"direct": direct_url + paths[0], "gateway": platform.stack.gateway_url + paths[0]}
    # The gateway's warm-up, as the direct side had its own above: a Caddy that has served
    # nothing yet opens its upstream connections and grows its heap during its first slice.
    run_wrk(urls["gateway"], seconds=2, lua=lua)
    pairs = _alternating_pairs(
        {
            name: functools.partial(run_wrk, url, seconds=seconds, lua=lua)
            for name, url in urls.items()
        },
        6,
    )
    for result in (direct, *(r for pair in pairs for r in pair.values())):
        if result.count(200) != result.requests:
            raise RuntimeError(f"tracking answered other than 200: {result.statuses}")
    ratio = statistics.median(pair["gateway"].rps / pair["direct"].rps for pair in pairs)
    errors = sum(r.server_errors + r.socket_errors for pair in pairs for r in pair.values())
    return [
        _ratio("tracking lookup, direct", direct, reference, 0.5, "hello"),
        Result(
            "tracking lookup, gateway vs direct",
            f"median of {len(pairs)} pairs; req/s via gateway/direct: "
            + ", ".join(f"{pair['gateway'].rps:,.0f}/{pair['direct'].rps:,.0f}" for pair in pairs)
            + f"; p99 via gateway {max(pair['gateway'].p99_ms for pair in pairs):.1f} ms at most;"
            f" {errors} errors",
            ratio,
            ">= 0.6",
            ratio >= 0.6 and errors == 0,
        ),
    ]


def shipment_get(run: Run) -> list[Result]:
    platform = _platform(run)
    paths = [f"/v1/shipments/{s['id']}" for s in platform.shipments]
    url = platform.stack.service_url("shipping")
    lua = rotating_lua(paths, headers=platform.key_header)
    run_wrk(url + paths[0], seconds=2, lua=lua)
    result, reference = run.beside_hello(
        lambda: run_wrk(url + paths[0], seconds=run.seconds, lua=lua)
    )
    if result.count(200) != result.requests:
        raise RuntimeError(f"GET shipment answered other than 200: {result.statuses}")
    return [_ratio("GET /v1/shipments/{id} with an API key", result, reference, 0.4, "hello")]


def shipping_direct_writes(platform: BenchPlatform) -> tuple[float, float]:
    """shipping's creates sent without the ORM so far, and the round trips (each one
    transaction) that carried them (0710)."""
    response = httpx.get(platform.stack.service_url("shipping") + "/metrics", timeout=10)
    response.raise_for_status()
    return direct_writes(response.text)


def shipment_create(run: Run) -> list[Result]:
    platform = _platform(run)
    body = json.dumps(shipment_payload())
    headers = {**platform.key_header, "Content-Type": "application/json"}
    url = platform.stack.gateway_url + "/v1/shipments"
    run_wrk(url, seconds=2, method="POST", body=body, headers=headers)
    writes_before, round_trips_before = shipping_direct_writes(platform)
    result, reference = run.beside_hello(
        lambda: run_wrk(url, seconds=run.seconds, method="POST", body=body, headers=headers)
    )
    writes_after, round_trips_after = shipping_direct_writes(platform)
    together = (writes_after - writes_before) / max(round_trips_after - round_trips_before, 1)
    refused = result.requests - result.count(201)
    ratio = result.rps / reference
    return [
        Result(
            "POST /v1/shipments through the gateway",
            f"{result.rps:,.0f} req/s vs hello {reference:,.0f}; p99 "
            f"{result.p99_ms:.1f} ms; {refused} not 201; {together:.1f} creates per round trip "
            "to PostgreSQL",
            ratio,
            ">= 0.15, 0 errors",
            ratio >= 0.15 and refused == 0 and not result.socket_errors,
        )
    ]


def bulk_create(run: Run) -> list[Result]:
    platform = _platform(run)
    items = [shipment_payload() for _ in range(1000)]
    with httpx.Client(base_url=platform.stack.gateway_url, timeout=60) as client:
        started = time.perf_counter()
        response = client.post(
            "/v1/shipments/bulk", json={"shipments": items}, headers=platform.key_header
        )
        elapsed = time.perf_counter() - started
    response.raise_for_status()
    created = response.json()["created"]
    return [
        Result(
            "bulk create of 1,000 shipments",
            f"{elapsed:.2f} s, {created} created",
            elapsed,
            "< 2 s",
            elapsed < 2 and created == 1000,
        )
    ]


def access_export(run: Run) -> list[Result]:
    """An account with 10,000 shipments and 100,000 request-log rows exports in < 5 s."""
    platform = _platform(run)
    stack = platform.stack
    with httpx.Client(base_url=stack.gateway_url, timeout=120) as client:
        from tests.support.platform import issue_api_key, register_and_login

        holder = register_and_login(client)
        _, key = issue_api_key(client, holder, "shipments:read", "shipments:write")
        for _ in range(10):
            response = client.post(
                "/v1/shipments/bulk",
                json={"shipments": [shipment_payload() for _ in range(1000)]},
                headers={"Authorization": f"Bearer {key}"},
            )
            response.raise_for_status()
        for schema, rows in (("identity", 50_000), ("shipping", 50_000)):
            platform.sql(
                f"""INSERT INTO {schema}.request_log (id, ip, timestamp, duration_ms, method, host,
                    port, path, status, request_size, response_size, request_id, service,
                    account_id)
                SELECT gen_random_uuid(), '198.51.100.7', now() - (n || ' seconds')::interval,
                    1.5, 'GET', 'api.parcelpro.nl', 443, '/v1/shipments', 200, 0, 512,
                    md5(n::text), :service, CAST(:account AS uuid)
                FROM generate_series(1, :rows) AS n""",  # noqa: S608 - fixed schema names
                service=schema,
                account=holder.account_id,
                rows=rows,
            )
        privacy_pid = stack.processes["privacy"].popen.pid
        rss_before = rss_megabytes(privacy_pid)
        peak = [rss_before]
        stop = threading.Event()

        def sample() -> None:
            while not stop.is_set():
                peak[0] = max(peak[0], rss_megabytes(privacy_pid))
                time.sleep(0.05)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        started = time.perf_counter()
        created = client.post(
            "/v1/privacy/requests", json={"type": "access"}, headers=holder.headers
        )
        created.raise_for_status()
        url = f"/v1/privacy/requests/{created.json()['id']}"
        done = wait_for_status(
            client, url, headers=holder.headers, statuses={"completed", "failed"}, within=120
        )
        export = client.get(f"{url}/export", headers=holder.headers)
        elapsed = time.perf_counter() - started
        stop.set()
        sampler.join()
    grew = peak[0] - rss_before
    ok = done["status"] == "completed" and export.status_code == 200 and elapsed < 5 and grew < 100
    return [
        Result(
            "access export (10k shipments, 100k log rows)",
            f"{elapsed:.2f} s to a {len(export.content) / 1e6:.1f} MB ZIP; privacy RSS "
            f"+{grew:.0f} MB at peak",
            elapsed,
            "< 5 s",
            ok,
        )
    ]


def retention_purge(run: Run) -> list[Result]:
    """1,000,000 expired recipients purged in < 60 s, in batches (no long table lock)."""
    platform = _platform(run)
    rows = 1_000_000
    platform.sql(
        """INSERT INTO shipping.shipments (id, account_id, mode, reference, carrier, service,
            status, tracking_code, parcel_count, price_cents, currency, recipient_name,
            recipient_contact_person, recipient_street, recipient_house_number,
            recipient_postcode, recipient_city, recipient_country, recipient_email,
            recipient_phone, recipient_email_index, recipient_phone_index, country_code,
            postcode_area, is_restricted, created_at, updated_at, status_changed_at, final_at)
        SELECT gen_random_uuid(), CAST(:account AS uuid), 'live', 'OLD-' || n, 'postnl',
            'standard', 'delivered', 'PB' || lpad(n::text, 12, '0'), 1, 695, 'EUR',
            'Recipient ' || n, NULL, 'Dorpsstraat', '7', '1234 AB', 'Amsterdam', 'NL',
            'r' || n || '@example.nl', '+31612345678', md5('e' || n), md5('p' || n), 'NL',
            '1234', false, now() - interval '200 days', now() - interval '200 days',
            now() - interval '190 days', now() - interval '190 days'
        FROM generate_series(1, :rows) AS n""",
        account=platform.holder.account_id,
        rows=rows,
    )
    platform.sql("ANALYZE shipping.shipments")
    live = platform.shipments[0]["id"]
    stop = threading.Event()
    worst = [0.0]

    async def probe_writes() -> None:
        """Writes to a live row while the purge runs: a long table lock would show here.

        One open connection, as a service's pool holds it: what is timed is the write and
        any lock it waits for, not connection set-up (which also took CPU from the purge).
        """
        engine = create_async_engine(platform.database_url, pool_size=1)
        try:
            async with engine.connect() as conn:
                while not stop.is_set():
                    started = time.perf_counter()
                    await conn.execute(
                        text(
                            "UPDATE shipping.shipments SET updated_at = now() "
                            "WHERE id = CAST(:id AS uuid)"
                        ),
                        {"id": live},
                    )
                    await conn.commit()
                    worst[0] = max(worst[0], time.perf_counter() - started)
                    await asyncio.sleep(0.1)
        finally:
            await engine.dispose()

    prober = threading.Thread(target=lambda: asyncio.run(probe_writes()), daemon=True)
    prober.start()
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "services.shipping_api", "purge"],
        cwd=ROOT,
        env=platform.stack.env,
        check=True,
        capture_output=True,
    )
    elapsed = time.perf_counter() - started
    stop.set()
    prober.join()
    left = platform.sql(
        "SELECT count(*) FROM shipping.shipments WHERE reference LIKE 'OLD-%' "
        "AND recipient_name IS NOT NULL"
    )[0][0]
    ok = elapsed < 60 and left == 0 and worst[0] < 1.0
    return [
        Result(
            "retention purge of 1,000,000 recipients",
            f"{elapsed:.1f} s, {left} left; slowest concurrent write {worst[0] * 1000:.0f} ms",
            elapsed,
            "< 60 s",
            ok,
        )
    ]


def resident_memory(run: Run) -> list[Result]:
    platform = _platform(run)
    results = []
    for service in ("identity", "shipping", "privacy"):
        rss = rss_megabytes(platform.stack.processes[service].popen.pid)
        results.append(
            Result(
                f"resident memory of {service}_api after the load",
                f"{rss:.0f} MB",
                rss,
                "< 150 MB",
                rss < 150,
            )
        )
    return results


def load_with_nothing_lost(run: Run) -> list[Result]:
    """32 clients creating and reading shipments through the gateway (bench/load)."""
    from bench.load.scenario import measure, parse_args

    result = measure(parse_args([]))
    return [
        Result(
            "load: 32 clients for 60 s, nothing lost",
            f"{result.requests_per_second:,.0f} req/s; {result.answered_201} answered 201, "
            f"{result.stored_shipments} stored; p99 {result.latency_ms.get('p99', 0):.0f} ms; "
            + ("; ".join(result.problems) or "no 5xx"),
            float(result.stored_shipments == result.answered_201),
            "all stored",
            result.passed,
        )
    ]


def _platform(run: Run) -> BenchPlatform:
    if run.platform is None:
        raise RuntimeError("the platform is not running")
    return run.platform


Scenario = Callable[[Run], list[Result]]

REFERENCE: list[tuple[str, Scenario]] = [
    ("hello", hello),
    ("request-log", request_log_cost),
    ("load", load_with_nothing_lost),
]
ON_PLATFORM: list[tuple[str, Scenario]] = [
    ("tracking", tracking),
    ("shipment-get", shipment_get),
    ("shipment-create", shipment_create),
    ("bulk", bulk_create),
    ("export", access_export),
    ("purge", retention_purge),
    ("memory", resident_memory),
]
SCENARIOS = [name for name, _ in REFERENCE + ON_PLATFORM]
# Scenarios that end with a hello-world measurement the next one may start from.
BESIDE_HELLO = {"shipment-get", "shipment-create"}


def run_all(seconds: int, only: set[str] | None = None) -> list[Result]:
    run = Run(seconds=seconds)
    results: list[Result] = []

    def chosen(name: str) -> bool:
        return not only or name in only

    with uvicorn_app("bench.hello:create_hello") as reference:
        run.hello_url = reference.url
        for name, scenario in REFERENCE:
            if name == "hello" or chosen(name):
                print(f"running {name} ...", file=sys.stderr, flush=True)
                results.extend(scenario(run))
        wanted = [(n, s) for n, s in ON_PLATFORM if chosen(n)]
        if wanted:
            print("starting the platform on PostgreSQL ...", file=sys.stderr, flush=True)
            with bench_platform() as platform:
                run.platform = platform
                run.moved_on()
                for name, scenario in wanted:
                    print(f"running {name} ...", file=sys.stderr, flush=True)
                    results.extend(scenario(run))
                    if name not in BESIDE_HELLO:
                        run.moved_on()
    return results


__all__ = ["SCENARIOS", "run_all"]
