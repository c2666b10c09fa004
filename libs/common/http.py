"""Outgoing HTTP: one pooled ``httpx.AsyncClient`` per process, and calls to our own services.

:class:`ServiceCaller` turns a downstream failure into a clean problem (502 for a wrong answer,
503 when unreachable, 504 on timeout) and retries only requests that are safe to repeat.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx
import orjson
import stamina
import structlog

from libs.common.errors import BadGateway, DomainError, GatewayTimeout, ServiceUnavailable

log = structlog.get_logger("http")

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})


def create_http_client(
    *,
    service: str,
    timeout_seconds: float = 10.0,
    transport: httpx.AsyncBaseTransport | None = None,
    max_connections: int = 100,
) -> httpx.AsyncClient:
    """The process-wide client: bounded pool, keep-alive, explicit timeouts, no env proxies."""
    return httpx.AsyncClient(
        timeout=httpx.Timeout(timeout_seconds, connect=min(3.0, timeout_seconds)),
        limits=httpx.Limits(
            max_connections=max_connections, max_keepalive_connections=max_connections // 2
        ),
        headers={"User-Agent": f"parcelpro-{service}"},
        transport=transport,
        trust_env=False,
        follow_redirects=False,
    )


class UpstreamError(DomainError):
    """A downstream answer we cannot use; carries the problem to return to our caller."""


class _Retryable(Exception):
    def __init__(self, cause: DomainError) -> None:
        super().__init__(str(cause))
        self.cause = cause


class ServiceCaller:
    """Calls another Parcel Pro service and maps every failure to a problem response."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        base_url: str,
        name: str,
        attempts: int = 3,
        backoff_seconds: float = 0.2,
    ) -> None:
        self.client = client
        self.base_url = base_url.rstrip("/")
        self.name = name
        self.attempts = attempts
        self.backoff_seconds = backoff_seconds

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        data: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool | None = None,
        expected: tuple[int, ...] = (200,),
    ) -> httpx.Response:
        """Send a request; retry transient failures only when the request is idempotent.

        Responses with a status in ``expected`` or a 4xx status are returned as they are (the
        caller decides what a 404 means); 5xx, timeouts and connection errors become problems.
        """
        method = method.upper()
        retry = idempotent if idempotent is not None else method in IDEMPOTENT_METHODS
        url = f"{self.base_url}{path}"
        content = orjson.dumps(json) if json is not None else None
        send_headers = dict(headers or {})
        if content is not None:
            send_headers.setdefault("Content-Type", "application/json")

        async def attempt() -> httpx.Response:
            try:
                response = await self.client.request(
                    method, url, content=content, data=data, headers=send_headers
                )
            except httpx.TimeoutException as exc:
                raise _Retryable(GatewayTimeout(f"{self.name} did not answer in time")) from exc
            except httpx.TransportError as exc:
                raise _Retryable(ServiceUnavailable(f"{self.name} is unreachable")) from exc
            if response.status_code in expected or 400 <= response.status_code < 500:
                return response
            if response.status_code in {502, 503, 504}:
                raise _Retryable(ServiceUnavailable(f"{self.name} is unavailable"))
            raise _Retryable(BadGateway(f"{self.name} answered {response.status_code}"))

        if not retry:
            try:
                return await attempt()
            except _Retryable as exc:
                raise exc.cause from exc
        try:
            async for retrying in stamina.retry_context(
                on=_Retryable,
                attempts=self.attempts,
                wait_initial=self.backoff_seconds,
                wait_max=2.0,
            ):
                with retrying:
                    return await attempt()
        except _Retryable as exc:
            log.warning("upstream_failed", upstream=self.name, path=path, problem=exc.cause.slug)
            raise exc.cause from exc
        raise ServiceUnavailable(f"{self.name} is unavailable")  # pragma: no cover

    async def request_json(self, method: str, path: str, **kwargs: Any) -> Any:
        """Like :meth:`request`, but the body must be JSON (else 502)."""
        response = await self.request(method, path, **kwargs)
        try:
            return orjson.loads(response.content)
        except orjson.JSONDecodeError as exc:
            raise BadGateway(f"{self.name} answered with malformed JSON") from exc
