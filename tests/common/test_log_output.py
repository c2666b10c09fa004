"""What a service process prints on stdout when its image sets ``PYTHONUNBUFFERED=1``: request
lines gathered in the buffer and flushed together, every other line at once, in order."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from datetime import datetime, timedelta
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[2]

# Each line is also marked straight on the file descriptor, past every buffer: where a
# request line lands among the marks shows when it was written.
SCRIPT = textwrap.dedent(
    """
    import asyncio, os, sys
    from libs.common.logging import RequestLogWriter, configure_logging, get_logger

    configure_logging("svc")
    print(type(sys.stdout.buffer).__name__, flush=True)
    writer = RequestLogWriter(flush_seconds=0.2)

    async def main():
        writer.write({"event": "request", "n": 1})
        writer.write({"event": "request", "n": 2})
        os.write(1, b"MARK after two request lines\\n")
        await asyncio.sleep(0.4)
        os.write(1, b"MARK after the flush interval\\n")
        writer.write({"event": "request", "n": 3})
        get_logger("x").info("other_line")
        os.write(1, b"MARK after another line\\n")
        print("printed", flush=False)
        os.write(1, b"MARK after a print\\n")

    asyncio.run(main())
    """
)


def _run(*, unbuffered: bool) -> list[str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    if unbuffered:
        env["PYTHONUNBUFFERED"] = "1"
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        cwd=ROOT,
        env={**env, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        check=True,
        timeout=60,
    )
    return result.stdout.decode().splitlines()


def _label(line: str) -> str:
    if line.startswith("{"):
        entry = orjson.loads(line)
        return f"request {entry['n']}" if entry["event"] == "request" else entry["event"]
    return line


LOGGED = [
    "MARK after two request lines",
    "request 1",
    "request 2",
    "MARK after the flush interval",
    "request 3",
    "other_line",
    "MARK after another line",
]


def test_request_lines_wait_for_the_flush_other_lines_go_out_at_once_in_order() -> None:
    lines = _run(unbuffered=True)
    assert lines[0] == "BufferedWriter"
    assert [_label(line) for line in lines[1:]] == [*LOGGED, "printed", "MARK after a print"]


def test_without_pythonunbuffered_the_log_lines_behave_the_same() -> None:
    lines = _run(unbuffered=False)
    assert lines[0] == "BufferedWriter"
    # A print is held until exit here, as Python holds output to a pipe.
    assert [_label(line) for line in lines[1:]][: len(LOGGED)] == LOGGED


def test_other_log_lines_keep_the_services_fields() -> None:
    lines = _run(unbuffered=True)
    other = next(orjson.loads(line) for line in lines if '"other_line"' in line)
    assert other["service"] == "svc"
    assert other["level"] == "info"
    assert datetime.fromisoformat(other["timestamp"]).utcoffset() == timedelta(0)


RECONFIGURED = """
    import structlog
    from libs.common.logging import configure_logging

    configure_logging("first")
    early = structlog.get_logger("early")
    early.info("before")  # bound and cached here
    configure_logging("second", "DEBUG")
    early.info("after")
    with structlog.testing.capture_logs() as captured:
        early.info("captured")
    print("CAPTURED", [entry["event"] for entry in captured], flush=True)
"""


def test_a_logger_used_before_a_reconfiguration_follows_it() -> None:
    """Module-level loggers are bound on first use; a later configuration (another service's
    app in the same process, a test's log capture) must still reach them."""
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(RECONFIGURED)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    lines = result.stdout.splitlines()
    assert lines[-1] == "CAPTURED ['captured']"
    events = [orjson.loads(line) for line in lines[:-1]]
    assert [(e["event"], e["service"]) for e in events] == [
        ("before", "first"),
        ("after", "second"),
    ]
