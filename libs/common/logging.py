"""Structured logging: one JSON object per line on stdout, rendered by orjson.

``configure_logging`` is idempotent and also routes the standard library's loggers (uvicorn,
SQLAlchemy, alembic) through the same renderer, so every line a process prints is JSON.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import ipaddress
import logging
import re
import sys
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from time import perf_counter_ns
from typing import Any, BinaryIO, Protocol

import orjson
import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from structlog.typing import EventDict, Processor, WrappedLogger
from uuid_utils import uuid7 as fast_uuid7

from libs.common.errors import PROBLEM_CONTENT_TYPE, internal_error_body
from libs.common.settings import IPNetwork

_configured: tuple[str, str] | None = None
_service = "parcelpro"


def _add_timestamp(_logger: WrappedLogger, _name: str, event_dict: EventDict) -> EventDict:
    # setdefault: request-log entries carry their own `timestamp` (when the request arrived).
    event_dict.setdefault("timestamp", datetime.now(UTC).isoformat(timespec="milliseconds"))
    event_dict.setdefault("service", _service)
    return event_dict


def _orjson_dumps(obj: Any, default: Any = None) -> bytes:
    return orjson.dumps(obj, default=default or str, option=orjson.OPT_UTC_Z)


_LINE_OPTIONS = orjson.OPT_UTC_Z | orjson.OPT_APPEND_NEWLINE


def _shared_processors() -> list[Processor]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        _add_timestamp,
    ]


def json_processors() -> list[Processor]:
    """The processor chain that renders one event as one JSON line (bytes)."""
    return [
        *_shared_processors(),
        structlog.processors.format_exc_info,
        structlog.processors.JSONRenderer(serializer=_orjson_dumps),
    ]


def buffered_stdout() -> BinaryIO:
    """The process's stdout as a buffered binary stream, which every log line goes through.

    ``PYTHONUNBUFFERED=1`` (container images set it, so that no output is held back) makes
    stdout's binary layer the raw file: each write a system call, and for the request log one per
    request, whose lines are meant to be gathered and flushed at most every 50 ms. Where the
    process's own stdout is raw, it is replaced once by a line-buffered text layer over a buffered
    one on the same file descriptor: every other line still goes out as it is written (structlog
    and the standard library's handler flush each), request lines within the writer's interval.
    A stdout someone else installed (a test's capture) is left as it is.
    """
    own = sys.__stdout__
    if own is not None and sys.stdout is own and isinstance(own.buffer, io.RawIOBase):
        sys.stdout = io.TextIOWrapper(
            open(own.fileno(), "wb", closefd=False),  # noqa: SIM115 - lives with the process
            encoding=own.encoding,
            errors=own.errors,
            line_buffering=True,
        )
    return sys.stdout.buffer


def _same_list(processors: list[Processor]) -> list[Processor]:
    """``processors`` in the list structlog already has, when configured before: loggers bound
    (and cached) earlier hold that list, so a reconfiguration reaches them too."""
    if not structlog.is_configured():
        return processors
    current: list[Processor] = structlog.get_config()["processors"]
    current[:] = processors
    return current


def configure_logging(service: str, level: str = "INFO") -> None:
    global _configured, _service
    _service = service
    if _configured == (service, level.upper()):
        return
    stdout = buffered_stdout()
    numeric = logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
    shared = _shared_processors()
    structlog.configure(
        processors=_same_list(json_processors()),
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.BytesLoggerFactory(stdout),
        cache_logger_on_first_use=True,
    )

    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(
                serializer=lambda obj, **kw: _orjson_dumps(obj).decode()
            ),
        ],
    )
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(numeric)
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    # Our request log replaces uvicorn's access log (which would print query strings).
    logging.getLogger("uvicorn.access").handlers[:] = []
    logging.getLogger("uvicorn.access").propagate = False
    logging.getLogger("uvicorn.access").disabled = True
    # One line per outgoing call would drown the request log; failures are logged by callers.
    logging.getLogger("httpx").setLevel(max(numeric, logging.WARNING))
    _configured = (service, level.upper())


def get_logger(name: str | None = None) -> Any:
    return structlog.get_logger(name)


# --------------------------------------------------------------------------------------------
# The request log
# --------------------------------------------------------------------------------------------

# Incoming request ids are kept only when short and plain (they end up in logs).
_is_valid_request_id = re.compile(rb"[A-Za-z0-9\-_.:]{1,128}").fullmatch


class TrustedProxies:
    """Which addresses are our own proxies; answers are cached (the same few peers repeat)."""

    def __init__(self, networks: Sequence[IPNetwork], *, cache_size: int = 4096) -> None:
        self.networks = tuple(networks)
        self.cache_size = cache_size
        self._cache: dict[str, tuple[bool, bool]] = {}

    def classify(self, address: str) -> tuple[bool, bool]:
        """(is a valid IP address, is one of our proxies)."""
        known = self._cache.get(address)
        if known is not None:
            return known
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            answer = (False, False)
        else:
            answer = (True, any(ip in network for network in self.networks))
        if len(self._cache) >= self.cache_size:
            self._cache.clear()
        self._cache[address] = answer
        return answer

    def client_ip(self, peer: str | None, forwarded_for: str | None) -> str | None:
        """The client's address: the peer, or, behind our proxies, the nearest untrusted hop.

        ``X-Forwarded-For`` is read right to left, skipping our own proxies, so a client cannot
        forge its address by sending the header itself.
        """
        if peer is None or not forwarded_for or not self.classify(peer)[1]:
            return peer
        candidate = peer
        for hop in reversed(forwarded_for.split(",")):
            hop = hop.strip()
            valid, trusted = self.classify(hop)
            if not valid:
                break
            candidate = hop
            if not trusted:
                break
        return candidate


def client_ip(
    peer: str | None, forwarded_for: str | None, trusted: Sequence[IPNetwork]
) -> str | None:
    return TrustedProxies(trusted).client_ip(peer, forwarded_for)


def request_client_ip(request: Any) -> str:
    """The client's address as the request log determined it (trusted-proxy rule applied);
    what per-client rate limits key on."""
    state = request.scope.get("state") or {}
    ip = state.get("client_ip")
    if ip is None:
        ip = request.client.host if request.client else None
    return str(ip or "unknown")


def _split_host(host_header: str | None) -> tuple[str | None, int | None]:
    if not host_header:
        return None, None
    if host_header.startswith("["):  # [v6]:port
        end = host_header.find("]")
        host, rest = host_header[1:end], host_header[end + 1 :]
        port = rest[1:] if rest.startswith(":") else ""
    else:
        host, _, port = host_header.partition(":")
    return host.lower() or None, int(port) if port.isdigit() else None


class RequestLogWriter:
    """Writes request-log entries to stdout as JSON lines, rendered by orjson with the options
    of every other line (what structlog's renderer would add is already in the entry).

    This is the hottest path of every service, so lines go into the stdout buffer and are flushed
    at most every ``flush_seconds`` (and at shutdown) instead of one write system call per
    request; any other log line flushes them too, so order is kept.
    """

    def __init__(self, stream: BinaryIO | None = None, *, flush_seconds: float = 0.05) -> None:
        self.stream = stream if stream is not None else buffered_stdout()
        self.flush_seconds = flush_seconds
        self._flush_pending: asyncio.TimerHandle | None = None

    def write(self, entry: dict[str, Any]) -> None:
        self.stream.write(orjson.dumps(entry, default=str, option=_LINE_OPTIONS))
        if self._flush_pending is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                self.flush()
            else:
                self._flush_pending = loop.call_later(self.flush_seconds, self.flush)

    def flush(self) -> None:
        self._flush_pending = None
        with contextlib.suppress(OSError, ValueError):
            self.stream.flush()


class RequestLogSinkProtocol(Protocol):
    def submit(self, record: dict[str, Any]) -> None: ...


RequestObserver = Callable[[Scope, int, float], None]
"""Told of each HTTP request once answered: the scope (its route known), status and seconds."""


class RequestLogMiddleware:
    """Pure ASGI middleware writing one request-log entry per HTTP request.

    The entry has exactly the fields the privacy statement lists (ip, timestamp, duration,
    method, host, port, path, status, request and response size) plus request_id, service and
    account_id. The path never includes the query string: queries can carry personal data.
    It also assigns the request id, echoes it in ``X-Request-ID``, turns an unhandled
    exception into a problem response without a stack trace, and tells ``observe`` (the
    metrics) of each request, so that one layer measures every request for both.

    Every request of every service passes here, so the work per request is kept to what the
    entry needs (docs/decisions/0702-request-log-cost.md): one pass over the headers, no
    method calls for what a dict lookup answers, one orjson call into the stdout buffer.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        service: str,
        trusted_proxies: Sequence[IPNetwork],
        sink: RequestLogSinkProtocol | None = None,
        writer: RequestLogWriter | None = None,
        logger: Any = None,
        observe: RequestObserver | None = None,
    ) -> None:
        self.app = app
        self.observe = observe
        self.service = service
        self.proxies = TrustedProxies(trusted_proxies)
        self.sink = sink
        self.writer = writer or RequestLogWriter()
        self.logger = logger or structlog.get_logger("request")
        self._hosts: dict[bytes, tuple[str | None, int | None]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = perf_counter_ns()
        arrived = datetime.now(UTC)
        host_header = incoming_id = forwarded_for = forwarded_proto = content_length = None
        chunked = False
        for name, value in scope["headers"]:
            if name == b"host":
                host_header = value
            elif name == b"x-request-id":
                incoming_id = value
            elif name == b"x-forwarded-for":
                forwarded_for = value
            elif name == b"x-forwarded-proto":
                forwarded_proto = value
            elif name == b"content-length":
                content_length = value
            elif name == b"transfer-encoding":
                chunked = True
        # Behind the gateway every request arrives with an id, which the gateway also returns
        # to the client; a service only adds the header for ids it assigned itself (each
        # response header costs the server measurable time on this hot path).
        if incoming_id is not None and _is_valid_request_id(incoming_id):
            request_id = incoming_id.decode("latin-1")
            assigned_id = None
        else:
            request_id = str(fast_uuid7())
            assigned_id = request_id.encode("latin-1")
        # Per-request state (a shallow copy of the lifespan state, as uvicorn makes): some
        # servers hand every request the same dict, and account ids must never leak across.
        state = scope["state"] = dict(scope.get("state") or ())
        state["request_id"] = request_id
        peer = scope.get("client")
        peer_ip = peer[0] if peer else None
        if forwarded_for is None:
            ip = peer_ip
        else:
            ip = self.proxies.client_ip(peer_ip, forwarded_for.decode("latin-1"))
        # Rate limits key on the same address the log records (see request_client_ip).
        state["client_ip"] = ip

        # A body with a Content-Length is exactly that long (the server enforces it); only
        # chunked bodies have to be counted as they arrive.
        request_size = int(content_length) if content_length and content_length.isdigit() else 0
        status = 0
        response_size = 0

        # Not a coroutine of its own: it hands back the server's awaitable, so the response
        # passes one coroutine fewer per message.
        def counting_send(message: Message) -> Awaitable[None]:
            nonlocal status, response_size
            if "status" in message:  # http.response.start
                status = message["status"]
                if assigned_id is not None:
                    message["headers"] = [
                        *message.get("headers", ()),
                        (b"x-request-id", assigned_id),
                    ]
            elif "body" in message:  # http.response.body
                response_size += len(message["body"])
            return send(message)

        if chunked:
            server_receive = receive

            async def counting_receive() -> Message:
                nonlocal request_size
                message = await server_receive()
                if message["type"] == "http.request":
                    request_size += len(message.get("body", b""))
                return message

            receive = counting_receive

        try:
            await self.app(scope, receive, counting_send)
        except Exception:
            self.logger.exception("unhandled_error", request_id=request_id, path=scope["path"])
            if status:
                raise
            body = internal_error_body(scope["path"], request_id)
            await counting_send(
                {
                    "type": "http.response.start",
                    "status": 500,
                    "headers": [
                        (b"content-type", PROBLEM_CONTENT_TYPE.encode()),
                        (b"content-length", str(len(body)).encode()),
                    ],
                }
            )
            await counting_send({"type": "http.response.body", "body": body})
        finally:
            elapsed_ns = perf_counter_ns() - started
            if host_header is None:
                host = port = None
            else:
                host, port = self._hosts.get(host_header) or self._host_and_port(host_header)
            if port is None:
                port = self._default_port(scope, forwarded_proto, peer_ip)
            account_id = state.get("account_id")
            entry: dict[str, Any] = {
                "ip": ip,
                "timestamp": arrived,
                "duration_ms": elapsed_ns // 1000 / 1000,
                "method": scope["method"],
                "host": host,
                "port": port,
                "path": scope["path"],
                "status": status or 500,
                "request_size": request_size,
                "response_size": response_size,
                "request_id": request_id,
                "service": self.service,
                "account_id": None if account_id is None else str(account_id),
                "event": "request",
                "level": "info",
            }
            self.writer.write(entry)
            if self.observe is not None:
                self.observe(scope, status or 500, elapsed_ns / 1e9)
            if account_id is not None and self.sink is not None:
                try:
                    self.sink.submit(entry)
                except Exception:
                    self.logger.exception("request_log_sink_failed", request_id=request_id)

    def _host_and_port(self, host_header: bytes) -> tuple[str | None, int | None]:
        known = _split_host(host_header.decode("latin-1"))
        if len(self._hosts) < 256:  # a handful of names; never grow on hostile input
            self._hosts[host_header] = known
        return known

    def _default_port(
        self, scope: Scope, forwarded_proto: bytes | None, peer_ip: str | None
    ) -> int | None:
        scheme = scope.get("scheme", "http")
        if forwarded_proto and peer_ip and self.proxies.classify(peer_ip)[1]:
            scheme = forwarded_proto.decode("latin-1").split(",")[0].strip()
        if scheme in {"https", "wss"}:
            return 443
        if scheme in {"http", "ws"}:
            return 80
        server = scope.get("server")
        return server[1] if server else None
