"""Where a load's CPU time goes: per request, each process of the platform's share.

``python -m bench.cpu create`` (or ``read``, ``tracking``; ``--direct`` skips the gateway)
starts the platform as ``make bench`` does, loads it with wrk in a few rounds and prints, per
round, the CPU time per request of each service, Caddy, PostgreSQL (all its processes) and the
rest of the machine (wrk, the kernel's own threads), and how busy the machine's CPUs were. Not a
scenario with a target: the figure to read before changing anything for a throughput target
(docs/performance.md, "What the profiles show").
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path

from bench.platform import BenchPlatform, bench_platform
from bench.servers import cpu_seconds
from bench.wrk import LoadResult, rotating_lua, run_wrk
from tests.support.platform import shipment_payload


def postgres_cpu_seconds() -> float:
    """CPU time of all PostgreSQL's processes so far (backends come and go: a gone one counts 0)."""
    total = 0.0
    for comm in Path("/proc").glob("[0-9]*/comm"):
        try:
            if comm.read_text().startswith("postgres"):
                total += cpu_seconds(int(comm.parent.name))
        except OSError:
            continue  # gone meanwhile
    return total


def machine_busy_seconds() -> float:
    """CPU time the whole machine spent outside idle and I/O wait, all CPUs together."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(values) - values[3] - values[4]) / os.sysconf("SC_CLK_TCK")


def _load(platform: BenchPlatform, kind: str, base: str, seconds: int) -> LoadResult:
    if kind == "create":
        headers = {**platform.key_header, "Content-Type": "application/json"}
        body = json.dumps(shipment_payload())
        return run_wrk(
            base + "/v1/shipments", seconds=seconds, method="POST", body=body, headers=headers
        )
    if kind == "read":
        paths = [f"/v1/shipments/{s['id']}" for s in platform.shipments]
        lua = rotating_lua(paths, headers=platform.key_header)
    else:
        paths = [f"/v1/tracking/{s['tracking_code']}" for s in platform.shipments]
        lua = rotating_lua(paths)
    return run_wrk(base + paths[0], seconds=seconds, lua=lua)


def measure_rounds(
    platform: BenchPlatform, load: Callable[[], LoadResult], rounds: int
) -> list[dict[str, float]]:
    """Per round: requests per second and, per process, CPU microseconds per request."""
    processes = {name: p.popen.pid for name, p in platform.stack.processes.items()}
    cpus = os.cpu_count() or 1
    figures = []
    for _ in range(rounds):
        before = {name: cpu_seconds(pid) for name, pid in processes.items()}
        postgres_before = postgres_cpu_seconds()
        busy_before = machine_busy_seconds()
        result = load()
        per_request = 1e6 / max(result.requests, 1)
        row = {
            name: (cpu_seconds(pid) - before[name]) * per_request for name, pid in processes.items()
        }
        row["postgres"] = (postgres_cpu_seconds() - postgres_before) * per_request
        busy = machine_busy_seconds() - busy_before
        row["rest"] = busy * per_request - sum(row.values())
        row["busy %"] = busy / (cpus * result.seconds) * 100
        row["req/s"] = result.rps
        figures.append(row)
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.cpu")
    parser.add_argument("kind", choices=["create", "read", "tracking"])
    parser.add_argument("--direct", action="store_true", help="to shipping_api, not the gateway")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=6, help="length of each round")
    args = parser.parse_args(argv)
    with bench_platform() as platform:
        stack = platform.stack
        base = stack.service_url("shipping") if args.direct else stack.gateway_url
        _load(platform, args.kind, base, 2)  # warm-up

        def load() -> LoadResult:
            return _load(platform, args.kind, base, args.seconds)

        for row in measure_rounds(platform, load, args.rounds):
            print(
                f"{row.pop('req/s'):8,.0f} req/s, {row.pop('busy %'):3.0f} % busy; "
                "CPU us per request: "
                + ", ".join(f"{name} {value:.0f}" for name, value in row.items())
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
