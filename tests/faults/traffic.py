"""Steady traffic of one account holder through the gateway — shipments created with an API key
and read back, privacy requests, account look-ups — recording every answer, so a fault test can
say what each request saw while the fault lasted."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.support.platform import AccountHolder, new_shipment


@dataclass(frozen=True)
class Answer:
    kind: str
    """``create``, ``read``, ``privacy`` or ``account``."""
    request_id: str
    sent_at: float
    seconds: float
    status: int | None
    """``None``: no HTTP answer at all (connection error or client timeout)."""
    content_type: str = ""
    body: Any = None
    reference: str | None = None
    error: str | None = None
    retry_after: str | None = None


@dataclass
class Traffic:
    client: httpx.AsyncClient
    holder: AccountHolder
    api_key: str
    tag: str
    recipient_name: str = "Jan Jansen"
    answers: list[Answer] = field(default_factory=list)
    created_ids: list[str] = field(default_factory=list)
    _numbers: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def request_id(self, kind: str) -> str:
        return f"{self.tag}-{kind}-{next(self._numbers)}"

    async def _send(
        self, kind: str, method: str, path: str, *, reference: str | None = None, **kwargs: Any
    ) -> Answer:
        request_id = self.request_id(kind)
        headers = {**kwargs.pop("headers", {}), "X-Request-ID": request_id}
        sent = time.monotonic()
        try:
            response = await self.client.request(method, path, headers=headers, **kwargs)
        except httpx.HTTPError as exc:
            answer = Answer(
                kind,
                request_id,
                sent,
                time.monotonic() - sent,
                None,
                reference=reference,
                error=repr(exc),
            )
        else:
            content_type = response.headers.get("content-type", "")
            body: Any = response.text
            if "json" in content_type:
                with contextlib.suppress(ValueError):
                    body = response.json()
            answer = Answer(
                kind,
                request_id,
                sent,
                time.monotonic() - sent,
                response.status_code,
                content_type,
                body,
                reference,
                retry_after=response.headers.get("retry-after"),
            )
        self.answers.append(answer)
        return answer

    async def create_shipment(self) -> Answer:
        reference = self.request_id("ref")
        answer = await self._send(
            "create",
            "POST",
            "/v1/shipments",
            reference=reference,
            json=new_shipment(reference, recipient_name=self.recipient_name),
            headers={"Authorization": f"Bearer {self.api_key}"},
        )
        if answer.status == 201:
            self.created_ids.append(answer.body["id"])
        return answer

    async def read_shipment(self) -> Answer:
        if not self.created_ids:
            return await self._send(
                "read", "GET", "/v1/shipments?limit=5", headers=self.holder.headers
            )
        shipment_id = self.created_ids[-1]
        return await self._send(
            "read", "GET", f"/v1/shipments/{shipment_id}", headers=self.holder.headers
        )

    async def request_privacy(self) -> Answer:
        return await self._send(
            "privacy",
            "POST",
            "/v1/privacy/requests",
            json={"type": "access"},
            headers=self.holder.headers,
        )

    async def read_account(self) -> Answer:
        return await self._send("account", "GET", "/v1/accounts/me", headers=self.holder.headers)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Keep requests going (several at a time) until the block ends."""
        stop = asyncio.Event()

        async def repeat(send: Callable[[], Awaitable[Answer]], pause: float) -> None:
            while not stop.is_set():
                await send()
                await asyncio.sleep(pause)

        workers = [
            *(repeat(self.create_shipment, 0.01) for _ in range(3)),
            *(repeat(self.read_shipment, 0.01) for _ in range(2)),
            repeat(self.read_account, 0.02),
            repeat(self.request_privacy, 0.25),
        ]
        tasks = [asyncio.create_task(worker) for worker in workers]
        try:
            yield
        finally:
            stop.set()
            await asyncio.gather(*tasks)
