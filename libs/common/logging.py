"""Structured logging: one JSON object per line on stdout, rendered by orjson.

``configure_logging`` is idempotent and also routes the standard library's loggers (uvicorn,
SQLAlchemy, alembic) through the same renderer, so every line a process prints is JSON.
"""

from __future__ import annotations

import ipaddress
import logging
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

import orjson
import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from structlog.typing import EventDict, Processor, WrappedLogger

from libs.common.db import uuid7
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


def configure_logging(service: str, level: str = "INFO") -> None:
    global _configured, _service
    _service = service
    if _configured == (service, level.upper()):
        return
    numeric = logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
    shared = _shared_processors()
    structlog.configure(
        processors=json_processors(),
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.BytesLoggerFactory(sys.stdout.buffer),
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

_REQUEST_ID_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.:")


def is_valid_request_id(value: str) -> bool:
    """Incoming request ids are kept only when short and plain (they end up in logs)."""
    return 0 < len(value) <= 128 and all(ch in _REQUEST_ID_CHARS for ch in value)


def client_ip(
    peer: str | None, forwarded_for: str | None, trusted: Sequence[IPNetwork]
) -> str | None:
    """The client's address: the peer, or, behind trusted proxies, the nearest untrusted hop.

    ``X-Forwarded-For`` is read right to left, skipping our own proxies, so a client cannot
    forge its address by sending the header itself.
    """
    if peer is None or not forwarded_for or not _is_trusted(peer, trusted):
        return peer
    candidate = peer
    for hop in reversed([hop.strip() for hop in forwarded_for.split(",")]):
        if not _is_valid_ip(hop):
            break
        candidate = hop
        if not _is_trusted(hop, trusted):
            break
    return candidate


def _is_valid_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _is_trusted(address: str, trusted: Sequence[IPNetwork]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in trusted)


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


class RequestLogSinkProtocol(Protocol):
    def submit(self, record: dict[str, Any]) -> None: ...


class RequestLogMiddleware:
    """Pure ASGI middleware writing one request-log entry per HTTP request.

    The entry has exactly the fields the privacy statement lists (ip, timestamp, duration,
    method, host, port, path, status, request and response size) plus request_id, service and
    account_id. The path never includes the query string: queries can carry personal data.
    It also assigns the request id, echoes it in ``X-Request-ID`` and turns an unhandled
    exception into a problem response without a stack trace.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        service: str,
        trusted_proxies: Sequence[IPNetwork],
        sink: RequestLogSinkProtocol | None = None,
        logger: Any = None,
    ) -> None:
        self.app = app
        self.service = service
        self.trusted_proxies = tuple(trusted_proxies)
        self.sink = sink
        self.logger = logger or structlog.get_logger("request")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        arrived = datetime.now(UTC)
        headers = dict(scope["headers"])
        incoming_id = headers.get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming_id if is_valid_request_id(incoming_id) else str(uuid7())
        # Per-request state (a shallow copy of the lifespan state, as uvicorn makes): some
        # servers hand every request the same dict, and account ids must never leak across.
        state = scope["state"] = dict(scope.get("state") or {})
        state["request_id"] = request_id
        request_id_header = (b"x-request-id", request_id.encode("latin-1"))

        request_size = 0
        body_complete = False
        status: int | None = None
        response_size = 0

        async def counting_receive() -> Message:
            nonlocal request_size, body_complete
            message = await receive()
            if message["type"] == "http.request":
                request_size += len(message.get("body", b""))
                body_complete = not message.get("more_body", False)
            return message

        async def counting_send(message: Message) -> None:
            nonlocal status, response_size
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), request_id_header]
            elif message["type"] == "http.response.body":
                response_size += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, counting_receive, counting_send)
        except Exception:
            self.logger.exception("unhandled_error", request_id=request_id, path=scope["path"])
            if status is not None:
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
            if not body_complete:
                length = headers.get(b"content-length", b"")
                if length.isdigit():
                    request_size = max(request_size, int(length))
            peer = scope.get("client")
            peer_ip = peer[0] if peer else None
            forwarded = headers.get(b"x-forwarded-for")
            ip = client_ip(
                peer_ip, forwarded.decode("latin-1") if forwarded else None, self.trusted_proxies
            )
            host, port = _split_host(headers.get(b"host", b"").decode("latin-1") or None)
            if port is None:
                port = self._default_port(scope, headers, peer_ip)
            account_id = state.get("account_id")
            record: dict[str, Any] = {
                "ip": ip,
                "timestamp": arrived,
                "duration_ms": round((time.perf_counter() - started) * 1000, 3),
                "method": scope["method"],
                "host": host,
                "port": port,
                "path": scope["path"],
                "status": status if status is not None else 500,
                "request_size": request_size,
                "response_size": response_size,
                "request_id": request_id,
                "service": self.service,
                "account_id": str(account_id) if account_id is not None else None,
            }
            self.logger.info("request", **record)
            if account_id is not None and self.sink is not None:
                try:
                    self.sink.submit(record)
                except Exception:
                    self.logger.exception("request_log_sink_failed", request_id=request_id)

    def _default_port(
        self, scope: Scope, headers: dict[bytes, bytes], peer_ip: str | None
    ) -> int | None:
        scheme = scope.get("scheme", "http")
        proto = headers.get(b"x-forwarded-proto")
        if proto and peer_ip and _is_trusted(peer_ip, self.trusted_proxies):
            scheme = proto.decode("latin-1").split(",")[0].strip()
        if scheme in {"https", "wss"}:
            return 443
        if scheme in {"http", "ws"}:
            return 80
        server = scope.get("server")
        return server[1] if server else None
