"""Answers of the internal data-subject API (decision 0004) that the services give alike."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator

from pydantic import BaseModel
from starlette.responses import StreamingResponse

EXPORT_CHUNK_BYTES = 64 * 1024


async def in_chunks(
    lines: AsyncIterable[bytes], size: int = EXPORT_CHUNK_BYTES
) -> AsyncIterator[bytes]:
    """NDJSON lines joined into chunks of about ``size`` bytes: one ASGI message per line cost
    more than reading and encoding the line (an export has hundreds of thousands)."""
    chunk = bytearray()
    async for line in lines:
        chunk += line
        if len(chunk) >= size:
            yield bytes(chunk)
            chunk.clear()
    if chunk:
        yield bytes(chunk)


def ndjson_response(lines: AsyncIterable[bytes]) -> StreamingResponse:
    """A subject export as it streams: NDJSON, in chunks, memory bounded by one chunk."""
    return StreamingResponse(in_chunks(lines), media_type="application/x-ndjson")


class KeptField(BaseModel):
    table: str
    field: str
    category: str
    reason: str
    retain_years: int | None


class EraseResult(BaseModel):
    service: str
    erased: dict[str, int]
    kept: list[KeptField]


class RestrictResult(BaseModel):
    service: str
    restricted: dict[str, int]


class RectifyResult(BaseModel):
    service: str
    rectified: dict[str, int]
    fields: list[str]
