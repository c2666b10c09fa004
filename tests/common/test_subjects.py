"""Subject exports stream in chunks of whole lines."""

from __future__ import annotations

from collections.abc import AsyncIterator

from libs.common.subjects import in_chunks


async def _lines(count: int) -> AsyncIterator[bytes]:
    for n in range(count):
        yield b'{"n":%d}\n' % n


async def test_chunks_hold_whole_lines_and_lose_none() -> None:
    chunks = [chunk async for chunk in in_chunks(_lines(10_000), size=1024)]
    assert 50 < len(chunks) < 200
    assert all(chunk.endswith(b"\n") for chunk in chunks)
    assert all(len(chunk) < 1024 + 16 for chunk in chunks)
    assert b"".join(chunks) == b"".join([line async for line in _lines(10_000)])


async def test_nothing_to_export_is_no_chunk() -> None:
    assert [chunk async for chunk in in_chunks(_lines(0))] == []
