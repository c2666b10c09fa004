"""Instructions a uvicorn server spends per request, counted by callgrind.

Counted instructions stay the same however busy the host is, where requests per second on a
shared machine move by a quarter between runs: they show what a change to the code costs.
The server runs under ``valgrind --tool=callgrind`` (about fifty times slower), is warmed up,
its counters are zeroed, then answers ``requests`` requests one after another on one
keep-alive connection; the user-space instructions of that stretch, over ``requests``.
Kernel time (the sockets) is not counted.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import tempfile
from pathlib import Path

from bench.servers import start_quietly, uvicorn_command, wait_until_up
from tests.support.smtp import free_port


def callgrind_available() -> bool:
    return shutil.which("valgrind") is not None and shutil.which("callgrind_control") is not None


def instructions_per_request(
    factory: str, *, path: str = "/hello", requests: int = 2000, warm_up: int = 300
) -> float:
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        command = [
            "valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
            *uvicorn_command(factory, port),
        ]  # fmt: skip
        # A fixed hash seed: the same dictionaries, the same probes, the same count.
        process = start_quietly(command, PYTHONHASHSEED="0")
        try:
            wait_until_up(f"http://127.0.0.1:{port}{path}", timeout=300)
            _answer(port, path, warm_up)
            _control("--zero", process.pid)
            _answer(port, path, requests)
            _control("--dump", process.pid)
        finally:
            process.send_signal(signal.SIGINT)
            process.wait(120)
        dump = next(Path(tmp).glob("callgrind.out.1"))
        summary = next(
            line for line in dump.read_text().splitlines() if line.startswith("summary:")
        )
    return int(summary.split()[1]) / requests


def _control(action: str, pid: int) -> None:
    subprocess.run(["callgrind_control", action, str(pid)], check=True, capture_output=True)


def _answer(port: int, path: str, requests: int) -> None:
    """``requests`` GETs in turn on one keep-alive connection, each read to its last byte."""
    request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()
    with socket.create_connection(("127.0.0.1", port), timeout=60) as connection:
        pending = b""
        for _ in range(requests):
            connection.sendall(request)
            while b"\r\n\r\n" not in pending:
                pending += _receive(connection)
            head, _, pending = pending.partition(b"\r\n\r\n")
            length = next(
                int(line.split(b":", 1)[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            )
            while len(pending) < length:
                pending += _receive(connection)
            pending = pending[length:]


def _receive(connection: socket.socket) -> bytes:
    data = connection.recv(65536)
    if not data:
        raise ConnectionError("the server closed the connection")
    return data
