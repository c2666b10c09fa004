"""Cursor pagination walks every row once, newest first, and rejects foreign cursors."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from libs.common.errors import ValidationFailed
from libs.common.pagination import PageParams, decode_cursor, encode_cursor, paginate_by_id
from services.shipping_api.models import RequestLog
from services.shipping_api.settings import ShippingSettings
from tests.support.db import rolled_back


async def test_pages_cover_all_rows_once_newest_first(shipping_settings: ShippingSettings) -> None:
    account = uuid.uuid4()
    async with rolled_back(shipping_settings) as database, database.session() as session:
        for i in range(7):
            session.add(
                RequestLog(
                    ip=None,
                    timestamp=datetime.now(UTC),
                    duration_ms=1,
                    method="GET",
                    host=None,
                    port=None,
                    path=f"/{i}",
                    status=200,
                    request_size=0,
                    response_size=0,
                    request_id=str(i),
                    service="shipping",
                    account_id=account,
                )
            )
        await session.flush()
        statement = select(RequestLog).where(RequestLog.account_id == account)
        seen: list[str] = []
        cursor = None
        pages = 0
        while True:
            rows, cursor = await paginate_by_id(
                session, statement, RequestLog.id, PageParams(limit=3, cursor=cursor)
            )
            seen.extend(row.path for row in rows)
            pages += 1
            if cursor is None:
                break
    assert seen == [f"/{i}" for i in reversed(range(7))]
    assert pages == 3


@pytest.mark.parametrize("cursor", ["%%%", "bm90LWpzb24", encode_cursor({"id": "nope"})])
async def test_foreign_cursor_is_a_422_naming_cursor(
    cursor: str, shipping_settings: ShippingSettings
) -> None:
    async with rolled_back(shipping_settings) as database, database.session() as session:
        with pytest.raises(ValidationFailed) as caught:
            await paginate_by_id(
                session, select(RequestLog), RequestLog.id, PageParams(limit=3, cursor=cursor)
            )
    assert caught.value.errors is not None
    assert caught.value.errors[0].field == "cursor"


def test_cursor_round_trip() -> None:
    assert decode_cursor(encode_cursor({"id": "x", "n": 1})) == {"id": "x", "n": 1}
