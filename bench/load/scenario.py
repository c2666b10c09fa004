"""The load scenario: the platform started as ``make run`` starts it, but on PostgreSQL; one
webshop account with an API key; wrk with N connections creating shipments and reading them back
through the gateway; then the count of stored shipments against the count of ``201`` answers.

Reuses the test suite's process launcher (``tests/support/stack.py``) and, unless a server is
given, its private PostgreSQL server (``tests/support/postgres_cluster.py``, here with fsync on:
commits cost what they cost in production).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from bench.platform import UNLIMITED
from services.shipping_api.models import Shipment
from tests.support.platform import (
    FAST_PASSWORD_HASHING,
    create_api_key,
    new_shipment,
    query,
    sign_up,
)
from tests.support.postgres_cluster import postgres_cluster, unavailable_reason
from tests.support.stack import SERVICES, Stack, running_stack

SCRIPT = Path(__file__).with_name("shipments.lua")
RESULT_MARKER = "PARCELPRO_RESULT "


@dataclass
class LoadResult:
    duration_seconds: float
    connections: int
    threads: int
    requests: int
    statuses: dict[str, int]
    answered_201: int
    stored_shipments: int
    socket_errors: dict[str, int]
    latency_ms: dict[str, float]
    requests_per_second: float
    creates_per_second: float
    cpus: int
    load_average_before: tuple[float, float, float]
    load_average_after: tuple[float, float, float]
    problems: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.problems


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.load",
        description="Create and read shipments through the gateway under load; check that "
        "every 201 is stored and nothing else, that nothing answered 5xx; report p99.",
    )
    parser.add_argument("--duration", type=int, default=60, help="seconds of load (60)")
    parser.add_argument("--connections", type=int, default=32, help="concurrent clients (32)")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (2)")
    parser.add_argument(
        "--drain",
        type=int,
        default=5,
        help="last seconds with reads only, so no create is unanswered when wrk stops (5)",
    )
    parser.add_argument(
        "--database-url",
        help="a PostgreSQL server (postgresql+asyncpg://user@host:port/db) on which a fresh "
        "database <db>_loadbench is created and dropped; default: a private server started "
        "for the run",
    )
    parser.add_argument("--keep", action="store_true", help="keep the logs and the database")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args(argv)
    if args.drain >= args.duration:
        parser.error("--drain must be shorter than --duration")
    return args


@contextlib.contextmanager
def database(args: argparse.Namespace) -> Iterator[str]:
    """The URL all three services use (each in its own schema)."""
    if args.database_url is None:
        reason = unavailable_reason()
        if reason is not None:
            raise SystemExit(
                f"cannot start a private PostgreSQL server ({reason}); pass --database-url"
            )
        with postgres_cluster(durable=True) as cluster:
            yield cluster.url()
        return
    server = make_url(args.database_url)
    name = f"{server.database}_loadbench"
    asyncio.run(_recreate(args.database_url, name, create=True))
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        if not args.keep:
            asyncio.run(_recreate(args.database_url, name, create=False))


async def _recreate(admin_url: str, name: str, *, create: bool) -> None:
    engine = create_async_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            if create:
                await conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        await engine.dispose()


async def prepare(gateway_url: str) -> tuple[str, uuid.UUID]:
    """The load's account and API key; the platform warmed up by another account."""
    async with httpx.AsyncClient(base_url=gateway_url, timeout=30) as client:
        warm = await sign_up(client)
        for number in range(20):
            created = await client.post(
                "/v1/shipments", json=new_shipment(f"WARM-{number}"), headers=warm.headers
            )
            created.raise_for_status()
            read = await client.get(f"/v1/shipments/{created.json()['id']}", headers=warm.headers)
            read.raise_for_status()
        holder = await sign_up(client)
        key = await create_api_key(client, holder)
        # The key's introspection is cached from here on, as for any webshop in steady use.
        checked = await client.get(
            "/v1/shipments?limit=1", headers={"Authorization": f"Bearer {key}"}
        )
        checked.raise_for_status()
    return key, uuid.UUID(holder.account_id)


def run_wrk(args: argparse.Namespace, gateway_url: str, api_key: str) -> dict[str, Any]:
    env = {
        **os.environ,
        "PARCELPRO_API_KEY": api_key,
        "PARCELPRO_SHIPMENT": orjson.dumps(new_shipment("{{REF}}")).decode(),
        "PARCELPRO_CREATE_UNTIL": str(int(time.time()) + args.duration - args.drain),
    }
    command = [
        "wrk",
        f"-t{args.threads}",
        f"-c{args.connections}",
        f"-d{args.duration}s",
        "--timeout",
        "30s",
        "-s",
        str(SCRIPT),
        gateway_url,
    ]
    completed = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=args.duration + 120, check=False
    )
    if completed.returncode != 0:
        raise SystemExit(f"wrk failed ({completed.returncode}): {completed.stderr}")
    for line in completed.stdout.splitlines():
        if line.startswith(RESULT_MARKER):
            result: dict[str, Any] = orjson.loads(line.removeprefix(RESULT_MARKER))
            return result
    raise SystemExit(f"wrk printed no result:\n{completed.stdout}\n{completed.stderr}")


async def stored_shipments(stack: Stack, account_id: uuid.UUID) -> int:
    rows = await query(
        stack, "shipping", select(func.count()).where(Shipment.account_id == account_id)
    )
    return int(rows[0][0])


def judge(result: LoadResult) -> None:
    if result.stored_shipments != result.answered_201:
        result.problems.append(
            f"{result.stored_shipments} shipments stored, {result.answered_201} answered 201"
        )
    unexpected = {s: n for s, n in result.statuses.items() if s not in {"200", "201"}}
    server_errors = sum(n for s, n in unexpected.items() if s.startswith("5"))
    if server_errors:
        result.problems.append(f"{server_errors} answers 5xx")
    if unexpected:
        result.problems.append(f"unexpected statuses: {unexpected}")
    failed = {kind: n for kind, n in result.socket_errors.items() if n and kind != "status"}
    if failed:
        result.problems.append(f"requests without an answer: {failed}")


def measure(args: argparse.Namespace) -> LoadResult:
    # Before anything of ours runs: how busy the machine already is (other work skews figures).
    before = os.getloadavg()
    base = Path(tempfile.mkdtemp(prefix="parcelpro-load-"))
    try:
        with database(args) as url:
            env = {
                **{f"{service.upper()}_DATABASE_URL": url for service in SERVICES},
                **FAST_PASSWORD_HASHING,
                # The load generator is one client with one account; real traffic spreads over
                # many, each within the API-wide budget (a 429 here would be no load at all).
                "RATE_LIMIT_PER_ACCOUNT": UNLIMITED,
                "RATE_LIMIT_PER_IP": UNLIMITED,
            }
            with running_stack(base, suffix="loadbench_stack", extra_env=env) as stack:
                api_key, account_id = asyncio.run(prepare(stack.gateway_url))
                raw = run_wrk(args, stack.gateway_url, api_key)
                after = os.getloadavg()
                stored = asyncio.run(stored_shipments(stack, account_id))
    finally:
        if args.keep:
            print(f"logs kept in {base}", file=sys.stderr)
        else:
            shutil.rmtree(base, ignore_errors=True)
    seconds = raw["duration_us"] / 1_000_000
    statuses = {str(k): int(v) for k, v in raw["statuses"].items()}
    latency = raw["latency_us"]
    result = LoadResult(
        duration_seconds=round(seconds, 2),
        connections=args.connections,
        threads=args.threads,
        requests=raw["requests"],
        statuses=statuses,
        answered_201=statuses.get("201", 0),
        stored_shipments=stored,
        socket_errors=raw["errors"],
        latency_ms={name: round(value / 1000, 1) for name, value in latency.items()},
        requests_per_second=round(raw["requests"] / seconds, 1),
        creates_per_second=round(statuses.get("201", 0) / (seconds - args.drain), 1),
        cpus=os.cpu_count() or 0,
        load_average_before=before,
        load_average_after=after,
    )
    judge(result)
    return result


def report(result: LoadResult) -> str:
    latency = result.latency_ms
    lines = [
        f"{result.connections} connections, {result.duration_seconds} s, through the gateway",
        f"requests:  {result.requests} ({result.requests_per_second}/s), "
        f"statuses {result.statuses}",
        f"creates:   {result.answered_201} answered 201 ({result.creates_per_second}/s), "
        f"{result.stored_shipments} stored",
        f"latency:   p50 {latency['p50']} ms, p90 {latency['p90']} ms, "
        f"p99 {latency['p99']} ms, max {latency['max']} ms",
        f"machine:   {result.cpus} CPUs; 1-minute load average {result.load_average_before[0]:.2f}"
        f" before the run, {result.load_average_after[0]:.2f} at its end",
        "result:    " + ("PASS" if result.passed else "FAIL: " + "; ".join(result.problems)),
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if shutil.which("wrk") is None:
        print("wrk is not installed (apt-get install wrk)", file=sys.stderr)
        return 2
    result = measure(args)
    print(orjson.dumps(asdict(result)).decode() if args.json else report(result))
    return 0 if result.passed else 1
