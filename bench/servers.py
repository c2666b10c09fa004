"""Processes the benchmarks measure, started the way the services are started."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.support.smtp import free_port

ROOT = Path(__file__).resolve().parents[1]


def wait_until_up(url: str, *, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1.0).status_code < 500:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up within {timeout}s")


@dataclass(frozen=True)
class Served:
    url: str
    pid: int

    def cpu_seconds(self) -> float:
        """User and system CPU time the process has used so far."""
        return cpu_seconds(self.pid)


def cpu_seconds(pid: int) -> float:
    """User and system CPU time process ``pid`` has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def uvicorn_command(factory: str, port: int) -> list[str]:
    """``factory`` (``module:function``) served like ``python -m services.X serve`` serves."""
    return [
        sys.executable, "-m", "uvicorn", factory, "--factory",
        "--host", "127.0.0.1", "--port", str(port),
        "--loop", "uvloop", "--http", "httptools",
        "--no-access-log", "--no-proxy-headers", "--no-server-header",
        "--log-level", "warning",
    ]  # fmt: skip


def start_quietly(command: list[str], **env: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": str(ROOT), **env},
    )  # fmt: skip


@contextmanager
def uvicorn_app(factory: str, *, path: str = "/hello") -> Iterator[Served]:
    """``factory`` served by uvicorn as the services are (``uvicorn_command``)."""
    port = free_port()
    process = start_quietly(uvicorn_command(factory, port))
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until_up(url + path)
        yield Served(url, process.pid)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(20)


def rss_megabytes(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")
