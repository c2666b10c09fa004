"""What a service receives from the gateway: small request bodies whole and in one write, large
ones streamed, and of the proxy's own headers only X-Forwarded-For/-Proto/-Host.

Caddy runs with the repository's Caddyfile in front of a plain TCP server standing in for
shipping_api, so that what reaches the service is seen byte for byte and when it arrives.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.support.smtp import free_port

ROOT = Path(__file__).resolve().parents[2]
ANSWER = b"HTTP/1.1 201 Created\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}"


@dataclass
class Upstream:
    """Accepts connections and records every chunk a ``recv`` returns, in order."""

    port: int
    chunks: list[bytes] = field(default_factory=list)
    received: threading.Event = field(default_factory=threading.Event)

    def serve(self, listener: socket.socket) -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        with conn:
            data = b""
            while True:
                chunk = conn.recv(1 << 20)
                if not chunk:
                    return
                self.chunks.append(chunk)
                self.received.set()
                data += chunk
                head, sep, body = data.partition(b"\r\n\r\n")
                length = next(
                    (
                        int(line.split(b":", 1)[1])
                        for line in head.lower().split(b"\r\n")
                        if line.startswith(b"content-length:")
                    ),
                    0,
                )
                if sep and len(body) >= length:
                    conn.sendall(ANSWER)
                    data = b""


@pytest.fixture(scope="module")
def upstream() -> Iterator[Upstream]:
    listener = socket.create_server(("127.0.0.1", 0))
    served = Upstream(port=listener.getsockname()[1])
    threading.Thread(target=served.serve, args=(listener,), daemon=True).start()
    yield served
    listener.close()


@pytest.fixture(scope="module")
def gateway(upstream: Upstream) -> Iterator[int]:
    port = free_port()
    env = {
        **os.environ,
        "GATEWAY_PORT": str(port),
        "SHIPPING_UPSTREAM": f"127.0.0.1:{upstream.port}",
        "IDENTITY_UPSTREAM": f"127.0.0.1:{free_port()}",
        "PRIVACY_UPSTREAM": f"127.0.0.1:{free_port()}",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "services.gateway", "run"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError("the gateway did not start")
            time.sleep(0.1)
        yield port
    finally:
        process.terminate()
        process.wait(10)


def _head(port: int, length: int) -> bytes:
    return (
        f"POST /v1/shipments HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
    ).encode()


def test_a_small_body_reaches_the_service_whole_and_only_once_complete(
    gateway: int, upstream: Upstream
) -> None:
    upstream.chunks.clear()
    upstream.received.clear()
    body = b'{"reference": "' + b"x" * 400 + b'"}'
    with socket.create_connection(("127.0.0.1", gateway), timeout=10) as client:
        client.sendall(_head(gateway, len(body)) + body[:100])
        # A slow upload waits in the gateway: nothing of it is on a service connection yet.
        assert not upstream.received.wait(0.5)
        client.sendall(body[100:])
        answer = client.recv(65536)
    assert answer.startswith(b"HTTP/1.1 201")
    request = b"".join(upstream.chunks)
    assert request.endswith(b"\r\n\r\n" + body)
    # Head and body came in one write.
    assert len(upstream.chunks) == 1


def test_a_body_past_the_buffer_streams_on_to_the_service(gateway: int, upstream: Upstream) -> None:
    upstream.chunks.clear()
    upstream.received.clear()
    body = b'{"shipments": "' + b"x" * (64 * 1024) + b'"}'
    with socket.create_connection(("127.0.0.1", gateway), timeout=10) as client:
        client.sendall(_head(gateway, len(body)) + body[: 32 * 1024])
        # More than the buffer has arrived: the service is called before the upload ends.
        assert upstream.received.wait(5)
        client.sendall(body[32 * 1024 :])
        answer = client.recv(65536)
    assert answer.startswith(b"HTTP/1.1 201")
    assert b"".join(upstream.chunks).endswith(b"\r\n\r\n" + body)


def test_the_service_is_told_the_forwarding_headers_and_nothing_else_of_the_proxy(
    gateway: int, upstream: Upstream
) -> None:
    upstream.chunks.clear()
    with httpx.Client() as client:
        del client.headers["accept-encoding"]
        response = client.get(f"http://127.0.0.1:{gateway}/v1/shipments")
    assert response.status_code == 201
    head = b"".join(upstream.chunks).partition(b"\r\n\r\n")[0].decode().lower()
    names = {line.split(":", 1)[0] for line in head.split("\r\n")[1:]}
    assert {"x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "x-request-id"} <= names
    assert "via" not in names
    # The client asked for no encoding, so neither does the gateway (Go would ask for gzip).
    assert "accept-encoding" not in names
    # Nor does the client learn what the gateway runs.
    assert "via" not in response.headers
    assert "server" not in response.headers
