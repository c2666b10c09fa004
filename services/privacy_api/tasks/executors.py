"""Carrying out one task: a call to another service's ``/internal/v1/subjects/...`` (decision
0004), or privacy's own share, applied in the same transaction that records it as done."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import orjson

from libs.common.auth import ServiceTokenProvider
from libs.common.errors import DomainError
from libs.common.http import ServiceCaller

FLUSH_BYTES = 1 << 20


class Transient(Exception):
    """Worth retrying later: the service is down, slow or answered 5xx."""


class Permanent(Exception):
    """Retrying will not help: the service refused the request (e.g. a 422 on rectify)."""


def _problem_detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return f"answered {response.status_code}"
    if not isinstance(body, dict):
        return f"answered {response.status_code}"
    fields = [str(e.get("field")) for e in body.get("errors") or [] if isinstance(e, dict)]
    detail = str(body.get("detail") or body.get("title") or response.status_code)
    return f"{detail} (fields: {', '.join(fields)})" if fields else detail


class PartWriter:
    """Appends NDJSON lines to a part file in large blocks, off the event loop."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.tmp = path.with_suffix(".tmp")
        self.buffer = bytearray()
        self.records = 0
        self.categories: dict[str, int] = {}

    async def open(self) -> None:
        await asyncio.to_thread(self._start)

    def _start(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.tmp.write_bytes(b"")

    async def add(self, line: bytes) -> None:
        line = line.strip()
        if not line:
            return
        try:
            item = orjson.loads(line)
            category = item["category"]
            if not isinstance(item["record"], dict) or not isinstance(item["table"], str):
                raise TypeError
        except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
            raise Transient("malformed export line from the service") from exc
        self.categories[str(category)] = self.categories.get(str(category), 0) + 1
        self.records += 1
        self.buffer += line + b"\n"
        if len(self.buffer) >= FLUSH_BYTES:
            await self.flush()

    async def flush(self) -> None:
        if self.buffer:
            data, self.buffer = bytes(self.buffer), bytearray()
            await asyncio.to_thread(self._append, data)

    def _append(self, data: bytes) -> None:
        with self.tmp.open("ab") as handle:
            handle.write(data)

    async def close(self) -> dict[str, Any]:
        await self.flush()
        await asyncio.to_thread(self.tmp.replace, self.path)
        return {"records": self.records, "categories": self.categories}

    async def discard(self) -> None:
        await asyncio.to_thread(self.tmp.unlink, True)


class RemoteService:
    """Another service's internal subject API, called with this service's token."""

    def __init__(self, caller: ServiceCaller, tokens: ServiceTokenProvider) -> None:
        self.caller = caller
        self.tokens = tokens

    async def _headers(self) -> dict[str, str]:
        try:
            return await self.tokens.headers()
        except DomainError as exc:
            raise Transient(f"no service token from identity: {exc.detail or exc.title}") from exc

    async def export(self, body: dict[str, Any], destination: Path) -> dict[str, Any]:
        """Stream the NDJSON answer into ``destination``; nothing is held in memory."""
        headers = {**await self._headers(), "Content-Type": "application/json"}
        url = f"{self.caller.base_url}/internal/v1/subjects/export"
        writer = PartWriter(destination)
        await writer.open()
        try:
            async with self.caller.client.stream(
                "POST", url, content=orjson.dumps(body), headers=headers
            ) as response:
                if response.status_code != 200:
                    await response.aread()
                    self._raise_for(response)
                async for line in response.aiter_lines():
                    await writer.add(line.encode())
        except httpx.TimeoutException as exc:
            await writer.discard()
            raise Transient(f"{self.caller.name} did not answer in time") from exc
        except httpx.TransportError as exc:
            await writer.discard()
            raise Transient(f"{self.caller.name} is unreachable") from exc
        except BaseException:
            await writer.discard()
            raise
        return await writer.close()

    async def call(self, action: str, body: dict[str, Any]) -> dict[str, Any]:
        try:
            response = await self.caller.request(
                "POST",
                f"/internal/v1/subjects/{action}",
                json=body,
                headers=await self._headers(),
                # Safe to repeat: the request_id makes every call idempotent (decision 0004).
                idempotent=True,
            )
        except DomainError as exc:
            raise Transient(exc.detail or exc.title) from exc
        if response.status_code != 200:
            self._raise_for(response)
        try:
            answer = response.json()
        except ValueError as exc:
            raise Transient(f"{self.caller.name} answered with malformed JSON") from exc
        if not isinstance(answer, dict):
            raise Transient(f"{self.caller.name} answered with an unexpected body")
        return answer

    def _raise_for(self, response: httpx.Response) -> None:
        status = response.status_code
        if status == 401:
            self.tokens.invalidate()
            raise Transient(f"{self.caller.name} did not accept the service token")
        if status == 429 or status >= 500:
            raise Transient(f"{self.caller.name} answered {status}")
        raise Permanent(f"{self.caller.name} refused: {_problem_detail(response)}")
