"""Carrying out one task: a call to another service's ``/internal/v1/subjects/...`` (decision
0004), or privacy's own share, applied in the same transaction that records it as done."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
from pathlib import Path
from typing import Any

import httpx
import orjson

from libs.common.auth import ServiceTokenProvider
from libs.common.errors import DomainError
from libs.common.http import ServiceCaller
from services.privacy_api.exports.builder import MalformedPart, PartSplitter

SPLIT_BYTES = 256 * 1024
"""Received NDJSON rendered at a time on the event loop: a few milliseconds of work."""


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
    """Splits a service's NDJSON answer into the part's per-category spools as it arrives
    (``exports.builder.PartSplitter``), so that building the ZIP is copying. A block is
    rendered on the event loop and written to disk by a thread while the next block is read."""

    def __init__(self, path: Path, *, categories: set[str] | None = None) -> None:
        self.path = path
        self.tmp = path.with_name(f"{path.name}.tmp")
        self.splitter = PartSplitter(self.tmp, categories=categories)
        self.buffer = bytearray()
        self.writing: asyncio.Future[None] | None = None

    async def open(self) -> None:
        await asyncio.to_thread(self._start)

    def _start(self) -> None:
        # A former attempt of the task may have left its spools behind.
        shutil.rmtree(self.tmp, ignore_errors=True)
        self.tmp.mkdir(parents=True)

    async def add(self, data: bytes) -> None:
        """NDJSON as it comes: whole lines or any chunk of them."""
        self.buffer += data
        if len(self.buffer) >= SPLIT_BYTES:
            end = self.buffer.rfind(b"\n")
            if end >= 0:
                block = bytes(self.buffer[:end])
                del self.buffer[: end + 1]
                await self._split(block)

    async def _split(self, block: bytes) -> None:
        try:
            rendered = self.splitter.feed(block)
        except MalformedPart as exc:
            raise Transient("malformed export line from the service") from exc
        await self._written()
        self.writing = asyncio.ensure_future(asyncio.to_thread(self.splitter.write, rendered))

    async def _written(self) -> None:
        if self.writing is not None:
            writing, self.writing = self.writing, None
            await writing

    async def close(self) -> dict[str, Any]:
        block, self.buffer = bytes(self.buffer), bytearray()
        await self._split(block)
        await self._written()
        await asyncio.to_thread(self._finish)
        return {"records": self.splitter.records, "categories": self.splitter.received}

    def _finish(self) -> None:
        self.splitter.finish()
        shutil.rmtree(self.path, ignore_errors=True)
        self.tmp.rename(self.path)

    async def discard(self) -> None:
        with contextlib.suppress(Exception):
            await self._written()
        await asyncio.to_thread(self._remove)

    def _remove(self) -> None:
        self.splitter.abandon()
        shutil.rmtree(self.tmp, ignore_errors=True)


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

    async def export(
        self, body: dict[str, Any], destination: Path, *, categories: set[str] | None = None
    ) -> dict[str, Any]:
        """Stream the NDJSON answer into the part ``destination``; nothing is held in memory.
        ``categories`` (PII categories, a disclosure's) are the service's to apply: only it
        knows which of its columns are of which category (decision 0308)."""
        headers = {**await self._headers(), "Content-Type": "application/json"}
        url = f"{self.caller.base_url}/internal/v1/subjects/export"
        if categories is not None:
            body = {**body, "categories": sorted(categories)}
        writer = PartWriter(destination)
        await writer.open()
        try:
            async with self.caller.client.stream(
                "POST", url, content=orjson.dumps(body), headers=headers
            ) as response:
                if response.status_code != 200:
                    await response.aread()
                    self._raise_for(response)
                async for chunk in response.aiter_bytes():
                    await writer.add(chunk)
            return await writer.close()
        except httpx.TimeoutException as exc:
            await writer.discard()
            raise Transient(f"{self.caller.name} did not answer in time") from exc
        except httpx.TransportError as exc:
            await writer.discard()
            raise Transient(f"{self.caller.name} is unreachable") from exc
        except BaseException:
            await writer.discard()
            raise

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
