"""Where a load's CPU time goes: per request, each process of the platform's share.

``python -m bench.cpu create`` (or ``read``, ``tracking``; ``--direct`` skips the gateway)
starts the platform as ``make bench`` does, loads it with wrk in a few rounds and prints, per
round, the CPU time per request of each service, Caddy, PostgreSQL (all its processes) and the
rest of the machine (wrk, the kernel's own threads), how busy the machine's CPUs were, each CPU's
idle share, and for how much of the time some task was ready to run but waited for a CPU (the
kernel's pressure stall information, where it has it). Not a scenario with a target: the figure
to read before changing anything for a throughput target (docs/performance.md, "What the
profiles show").

``--pin`` is an experiment, not a setting of the platform: shipping_api gets the last CPU to
itself and everything else (wrk, Caddy, PostgreSQL, the other services) the others, which tells
whether the kernel's placement of the processes, rather than their work, leaves CPU time unused.
Affinities are put back when it ends, PostgreSQL's included (it is the machine's server).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

from bench.platform import BenchPlatform, bench_platform
from bench.servers import cpu_seconds
from bench.wrk import LoadResult, rotating_lua, run_wrk
from tests.support.platform import shipment_payload


def postgres_pids() -> list[int]:
    pids = []
    for comm in Path("/proc").glob("[0-9]*/comm"):
        with contextlib.suppress(OSError):  # gone meanwhile
            if comm.read_text().startswith("postgres"):
                pids.append(int(comm.parent.name))
    return pids


def postgres_cpu_seconds() -> float:
    """CPU time of all PostgreSQL's processes so far (backends come and go: a gone one counts 0)."""
    total = 0.0
    for pid in postgres_pids():
        with contextlib.suppress(OSError):
            total += cpu_seconds(pid)
    return total


def cpu_seconds_so_far() -> tuple[float, list[float]]:
    """From one reading of ``/proc/stat``: the time all CPUs together spent outside idle and
    I/O wait, and each CPU's time idle (I/O wait included)."""
    ticks = os.sysconf("SC_CLK_TCK")
    lines = Path("/proc/stat").read_text().splitlines()
    total = [int(v) for v in lines[0].split()[1:]]
    idle = []
    for line in lines[1:]:
        if not line.startswith("cpu"):
            break
        values = [int(v) for v in line.split()[1:]]
        idle.append((values[3] + values[4]) / ticks)
    return (sum(total) - total[3] - total[4]) / ticks, idle


def cpu_waiting_seconds() -> float | None:
    """Time during which at least one task was ready to run and waited for a CPU (PSI's
    ``some`` total), or ``None`` where the kernel does not report it."""
    try:
        some = Path("/proc/pressure/cpu").read_text().splitlines()[0]
    except (OSError, IndexError):
        return None
    return int(some.rsplit("total=", 1)[1]) / 1e6


def _set_affinity(pid: int, cpus: set[int]) -> None:
    """Every thread of ``pid`` (Go's included) onto ``cpus``; a process gone meanwhile is fine."""
    for task in Path(f"/proc/{pid}/task").glob("[0-9]*"):
        with contextlib.suppress(OSError):
            os.sched_setaffinity(int(task.name), cpus)


@contextlib.contextmanager
def shipping_on_its_own_cpu(platform: BenchPlatform) -> Iterator[None]:
    """shipping_api alone on the last CPU, everything else on the others, until the block ends.
    PostgreSQL's new backends inherit the postmaster's affinity, so the postmaster moves too."""
    everything = os.sched_getaffinity(0)
    if len(everything) < 2:
        raise SystemExit("--pin needs at least two CPUs")
    own = {max(everything)}
    rest = everything - own
    processes = platform.stack.processes
    others = [p.popen.pid for name, p in processes.items() if name != "shipping"]
    moved = [*others, *postgres_pids()]
    try:
        for pid in moved:
            _set_affinity(pid, rest)
        _set_affinity(processes["shipping"].popen.pid, own)
        os.sched_setaffinity(0, rest)  # wrk, started from here, inherits it
        yield
    finally:
        os.sched_setaffinity(0, everything)
        for pid in [*moved, *postgres_pids(), processes["shipping"].popen.pid]:
            _set_affinity(pid, everything)


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
    """Per round: requests per second, per process CPU microseconds per request, and how the
    CPUs were used (``busy %`` of all, each one's ``idle %``, ``waiting %`` of the time some
    task waited for a CPU)."""
    processes = {name: p.popen.pid for name, p in platform.stack.processes.items()}
    cpus = os.cpu_count() or 1
    figures = []
    for _ in range(rounds):
        before = {name: cpu_seconds(pid) for name, pid in processes.items()}
        postgres_before = postgres_cpu_seconds()
        busy_before, idle_before = cpu_seconds_so_far()
        waiting_before = cpu_waiting_seconds()
        result = load()
        per_request = 1e6 / max(result.requests, 1)
        row = {
            name: (cpu_seconds(pid) - before[name]) * per_request for name, pid in processes.items()
        }
        row["postgres"] = (postgres_cpu_seconds() - postgres_before) * per_request
        busy_after, idle_after = cpu_seconds_so_far()
        busy = busy_after - busy_before
        row["rest"] = busy * per_request - sum(row.values())
        row["busy %"] = busy / (cpus * result.seconds) * 100
        for cpu, (after, before_idle) in enumerate(zip(idle_after, idle_before, strict=True)):
            row[f"cpu{cpu} idle %"] = (after - before_idle) / result.seconds * 100
        waiting_after = cpu_waiting_seconds()
        if waiting_before is not None and waiting_after is not None:
            row["waiting %"] = (waiting_after - waiting_before) / result.seconds * 100
        row["req/s"] = result.rps
        figures.append(row)
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.cpu")
    parser.add_argument("kind", choices=["create", "read", "tracking"])
    parser.add_argument("--direct", action="store_true", help="to shipping_api, not the gateway")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=6, help="length of each round")
    parser.add_argument(
        "--pin", action="store_true", help="shipping_api on a CPU of its own (an experiment)"
    )
    args = parser.parse_args(argv)
    with contextlib.ExitStack() as stack_of_contexts:
        platform = stack_of_contexts.enter_context(bench_platform())
        if args.pin:
            stack_of_contexts.enter_context(shipping_on_its_own_cpu(platform))
        stack = platform.stack
        base = stack.service_url("shipping") if args.direct else stack.gateway_url
        _load(platform, args.kind, base, 2)  # warm-up

        def load() -> LoadResult:
            return _load(platform, args.kind, base, args.seconds)

        for row in measure_rounds(platform, load, args.rounds):
            use = [row.pop("busy %"), *(row.pop(k) for k in list(row) if k.endswith("idle %"))]
            waiting = row.pop("waiting %", None)
            print(
                f"{row.pop('req/s'):8,.0f} req/s, {use[0]:3.0f} % busy (idle: "
                + ", ".join(f"cpu{cpu} {idle:.0f} %" for cpu, idle in enumerate(use[1:]))
                + ("" if waiting is None else f"; a task waiting for a CPU {waiting:.0f} %")
                + "); CPU us per request: "
                + ", ".join(f"{name} {value:.0f}" for name, value in row.items())
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
