"""Hello world answered in-process, without a server: for counting what the request log adds
per request in instructions, which stay the same however busy the host is.

    valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.on.1 python -m bench.inprocess on 1
    valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.on.2001 python -m bench.inprocess on 2001

The difference of the two totals ("I refs") over 2,000 is the instructions per request; the
same for ``off`` gives the reference (decision 0702 records the figures).
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import uvloop
from starlette.types import ASGIApp, Message

from bench.hello import create_hello_logged, create_hello_settled

WARM_UP = 200


def _scope() -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/hello",
        "raw_path": b"/hello",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"127.0.0.1:8000"), (b"user-agent", b"bench")],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }


async def _receive() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}


async def _send(message: Message) -> None:
    return None


async def answer(app: ASGIApp, requests: int) -> float:
    """Seconds of CPU per request after a warm-up."""
    for _ in range(WARM_UP):
        await app(_scope(), _receive, _send)
    started = time.process_time()
    for _ in range(requests):
        await app(_scope(), _receive, _send)
    return (time.process_time() - started) / max(requests, 1)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.inprocess")
    parser.add_argument("variant", choices=["on", "off"], help="request log on or off")
    parser.add_argument("requests", type=int, help="requests after the warm-up")
    args = parser.parse_args(argv)
    app = create_hello_logged() if args.variant == "on" else create_hello_settled()
    seconds = uvloop.run(answer(app, args.requests))
    print(f"{args.variant}: {seconds * 1e6:.1f} us of CPU per request")


if __name__ == "__main__":
    main()
