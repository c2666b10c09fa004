"""The whole platform as real processes (Caddy and the three services), as `make run` starts
it, on free ports: for end-to-end tests."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.support.db import POSTGRES_URL
from tests.support.smtp import free_port

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("identity", "shipping", "privacy")


@dataclass
class Process:
    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path

    def lines(self) -> list[str]:
        return self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()

    def json_lines(self) -> list[dict[str, Any]]:
        out = []
        for line in self.lines():
            try:
                value = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
            if isinstance(value, dict):
                out.append(value)
        return out


@dataclass
class Stack:
    base_dir: Path
    ports: dict[str, int]
    env: dict[str, str]
    processes: dict[str, Process] = field(default_factory=dict)

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['gateway']}"

    def service_url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.ports[service]}"

    def start(self, name: str) -> Process:
        command = (
            [sys.executable, "-m", "services.gateway", "run"]
            if name == "gateway"
            else [sys.executable, "-m", f"services.{name}_api", "serve"]
        )
        log_path = self.base_dir / f"{name}.log"
        with log_path.open("ab") as log:
            popen = subprocess.Popen(
                command, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        process = Process(name, popen, log_path)
        self.processes[name] = process
        return process

    def stop(self, name: str, *, kill: bool = False, timeout: float = 20.0) -> None:
        process = self.processes.pop(name)
        if process.popen.poll() is None:
            process.popen.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
            try:
                process.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                process.popen.kill()
                process.popen.wait(5)

    def wait_ready(self, names: tuple[str, ...], *, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        pending = set(names)
        with httpx.Client(timeout=2.0) as client:
            while pending and time.monotonic() < deadline:
                for name in list(pending):
                    process = self.processes[name]
                    if process.popen.poll() is not None:
                        raise RuntimeError(
                            f"{name} exited with {process.popen.returncode}:\n"
                            + "\n".join(process.lines()[-30:])
                        )
                    url = (
                        f"{self.gateway_url}/healthz"
                        if name == "gateway"
                        else f"{self.service_url(name)}/readyz"
                    )
                    try:
                        if client.get(url).status_code == 200:
                            pending.discard(name)
                    except httpx.TransportError:
                        pass
                time.sleep(0.1)
        if pending:
            raise RuntimeError(f"not ready within {timeout}s: {sorted(pending)}")

    def log_lines(self) -> list[dict[str, Any]]:
        lines: list[dict[str, Any]] = []
        for path in sorted(self.base_dir.glob("*.log")):
            lines.extend(Process(path.stem, None, path).json_lines())  # type: ignore[arg-type]
        return lines


async def _recreate_database(admin_url: str, name: str) -> None:
    engine = create_async_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        await engine.dispose()


def stack_database_urls(
    base_dir: Path, suffix: str, postgres_url: str | None = None
) -> dict[str, str]:
    """A database of the stack's own: its data is committed, so it must not be the test one."""
    postgres_url = postgres_url or POSTGRES_URL
    if not postgres_url:
        return {s: f"sqlite+aiosqlite:///{base_dir / f'{s}.db'}" for s in SERVICES}
    prefix, _, dbname = postgres_url.rpartition("/")
    dbname = dbname.split("?")[0]
    name = f"{dbname}_{suffix}"
    asyncio.run(_recreate_database(postgres_url, name))
    return dict.fromkeys(SERVICES, f"{prefix}/{name}")


@contextmanager
def running_stack(
    base_dir: Path,
    *,
    suffix: str = "e2e",
    extra_env: dict[str, str] | None = None,
    services: tuple[str, ...] = ("gateway", *SERVICES),
    postgres_url: str | None = None,
) -> Iterator[Stack]:
    """``postgres_url`` (default: ``TEST_DATABASE_URL``) names the server and a database from
    which the stack's own database ``<name>_<suffix>`` is derived; none means SQLite files."""
    ports = {name: free_port() for name in ("gateway", *SERVICES)}
    urls = stack_database_urls(base_dir, suffix, postgres_url)
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("IDENTITY_", "SHIPPING_", "PRIVACY_"))
    }
    env.update(
        {
            "ENVIRONMENT": "development",
            "VAR_DIR": str(base_dir / "var"),
            "LOG_LEVEL": "INFO",
            "GATEWAY_PORT": str(ports["gateway"]),
            "IDENTITY_URL": f"http://127.0.0.1:{ports['identity']}",
            "SHIPPING_URL": f"http://127.0.0.1:{ports['shipping']}",
            "PRIVACY_URL": f"http://127.0.0.1:{ports['privacy']}",
            "PUBLIC_BASE_URL": f"http://127.0.0.1:{ports['gateway']}",
            "PYTHONUNBUFFERED": "1",
            # Short enough for a test to see a revoked API key refused; production keeps 30 s.
            "API_KEY_CACHE_SECONDS": "2",
        }
    )
    for service in SERVICES:
        prefix = service.upper()
        env[f"{prefix}_PORT"] = str(ports[service])
        env[f"{prefix}_DATABASE_URL"] = urls[service]
        env[f"{prefix}_MIGRATE_ON_START"] = "true"
        env[f"{prefix}_UPSTREAM"] = f"127.0.0.1:{ports[service]}"
    env.update(extra_env or {})
    stack = Stack(base_dir=base_dir, ports=ports, env=env)
    try:
        # Services first, one at a time: each migrates its own schema on start.
        for name in (s for s in SERVICES if s in services):
            stack.start(name)
            stack.wait_ready((name,))
        if "gateway" in services:
            stack.start("gateway")
            stack.wait_ready(("gateway",))
        yield stack
    finally:
        for name in list(stack.processes):
            stack.stop(name)
