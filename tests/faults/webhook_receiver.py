"""A webhook receiver on a free loopback port that counts deliveries by their
``Parcelpro-Delivery`` id and can hold requests unanswered (a delivery "in flight") until
released."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass(frozen=True)
class Delivery:
    delivery_id: str
    event: str
    body: bytes


class HoldingReceiver:
    def __init__(self) -> None:
        self.url = ""
        self.deliveries: list[Delivery] = []
        self.in_flight = 0
        self._lock = threading.Lock()
        self._release = threading.Event()
        self._release.set()

    def hold(self) -> None:
        """Answer nothing until :meth:`release` (the sender waits, its POST in flight)."""
        self._release.clear()

    def release(self) -> None:
        self._release.set()

    def record(self, delivery: Delivery) -> None:
        with self._lock:
            self.deliveries.append(delivery)
            self.in_flight += 1

    def answered(self) -> None:
        with self._lock:
            self.in_flight -= 1

    def counts(self) -> Counter[str]:
        with self._lock:
            return Counter(d.delivery_id for d in self.deliveries)

    def bodies(self, delivery_id: str) -> list[bytes]:
        with self._lock:
            return [d.body for d in self.deliveries if d.delivery_id == delivery_id]

    async def wait_for(
        self, check: str, predicate: Callable[[], bool], *, within: float = 20.0
    ) -> None:
        deadline = time.monotonic() + within
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(f"receiver: {check} not reached; saw {self.counts()}")
            await asyncio.sleep(0.05)


@contextmanager
def holding_receiver() -> Iterator[HoldingReceiver]:
    receiver = HoldingReceiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            receiver.record(
                Delivery(
                    delivery_id=self.headers.get("Parcelpro-Delivery", ""),
                    event=self.headers.get("Parcelpro-Event", ""),
                    body=body,
                )
            )
            try:
                receiver._release.wait(timeout=60)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()
            except OSError:
                pass  # the sender is gone (killed while waiting for this answer)
            finally:
                receiver.answered()

        def log_message(self, format: str, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/parcelpro"
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield receiver
    finally:
        receiver.release()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
