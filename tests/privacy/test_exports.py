"""Access exports: big accounts export in seconds with bounded memory; only the subject downloads;
the ZIP is deleted after its retention period."""

from __future__ import annotations

import csv
import io
import time
import tracemalloc
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from libs.common.pii import export_meta
from services.privacy_api.exports.builder import build_zip
from services.privacy_api.models import Base
from services.privacy_api.tasks.executors import PartWriter, Transient
from tests.support.privacy_doubles import Row
from tests.support.privacy_harness import Privacy, zip_members


async def test_an_account_with_10000_shipments_and_100000_log_entries_exports_in_seconds(
    privacy: Privacy,
) -> None:
    identity, shipping = privacy.downstreams.identity, privacy.downstreams.shipping
    account = identity.add_account(email="big@example.nl", request_log_rows=0)
    for i in range(100_000):
        identity.add(
            Row(
                table="request_log",
                category="request_log",
                record={"ip": "198.51.100.23", "path": f"/v1/shipments/{i}", "status": 200},
                account_id=account,
            )
        )
    for _ in range(10_000):
        shipping.add_shipment(sender=account)
    created = await privacy.request_as_account(account, type="portability")
    started = time.perf_counter()
    await privacy.drain()
    elapsed = time.perf_counter() - started
    assert (await privacy.get_request(created["id"]))["status"] == "completed"
    assert elapsed < 20, f"export took {elapsed:.1f}s"
    download = await privacy.client.get(
        f"/v1/privacy/requests/{created['id']}/export", headers=privacy.user(account)
    )
    files = zip_members(download.content)
    assert len(orjson.loads(files["identity/request_log.json"])) == 100_000
    assert files["identity/request_log.csv"].count(b"\n") == 100_001  # header + rows
    assert len(orjson.loads(files["shipping/shipments.json"])) == 10_000
    summary = orjson.loads(files["summary.json"])
    assert summary["records"]["identity"]["request_log"] == 100_000


def test_building_the_zip_keeps_memory_flat(tmp_path: Path) -> None:
    part = tmp_path / "shipping.ndjson"
    line = orjson.dumps(
        {"category": "shipment_details", "table": "shipment", "record": {"reference": "R" * 200}}
    )
    part.write_bytes((line + b"\n") * 20_000)  # ~5 MB of records
    tracemalloc.start()
    try:
        stats = build_zip(
            {"shipping": part}, tmp_path / "out.zip", documents=lambda _: [("summary.txt", b"x")]
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert stats.records == {"shipping": {"shipment_details": 20_000}}
    assert peak < 3 * 1024 * 1024, f"peak {peak / 1e6:.1f} MB"


async def test_only_the_subject_downloads_the_export(privacy: Privacy) -> None:
    account = privacy.downstreams.identity.add_account(email="shop@example.nl")
    created = await privacy.request_as_account(account, type="access")
    url = f"/v1/privacy/requests/{created['id']}/export"
    not_ready = await privacy.client.get(url, headers=privacy.user(account))
    assert not_ready.status_code == 409
    await privacy.drain()
    assert (await privacy.client.get(url, headers=privacy.user(account))).status_code == 200
    assert (await privacy.client.get(url, headers=privacy.officer())).status_code == 404
    assert (await privacy.client.get(url)).status_code == 401


async def test_anonymous_requester_downloads_with_the_request_token(privacy: Privacy) -> None:
    privacy.downstreams.shipping.add_shipment(recipient_email="piet@example.nl")
    created, token = await privacy.request_by_email("piet@example.nl", type="access")
    await privacy.drain()
    download = await privacy.client.get(
        f"/v1/privacy/requests/{created['id']}/export",
        headers={"X-Privacy-Request-Token": token},
    )
    assert download.status_code == 200
    files = zip_members(download.content)
    assert orjson.loads(files["shipping/shipments.json"])[0]["recipient_email"] == "piet@example.nl"


async def test_export_of_a_letter_request_is_downloaded_by_the_officer(privacy: Privacy) -> None:
    account = privacy.downstreams.identity.add_account(email="shop@example.nl")
    response = await privacy.client.post(
        "/v1/privacy/requests",
        json={
            "type": "access",
            "account_id": str(account),
            "verification_note": "Driving licence seen; copy destroyed.",
        },
        headers=privacy.officer(),
    )
    created = response.json()
    await privacy.drain()
    download = await privacy.client.get(
        f"/v1/privacy/requests/{created['id']}/export", headers=privacy.officer()
    )
    assert download.status_code == 200
    assert "identity/account.json" in zip_members(download.content)
    # Answered by post: the officer is told, the subject gets no e-mail.
    await privacy.inbox.wait_for("privacy@parcelpro.nl")
    assert privacy.inbox.to("shop@example.nl") == []


async def test_export_is_deleted_after_the_retention_period(privacy: Privacy) -> None:
    from services.privacy_api.context import collaborators_of
    from services.privacy_api.deadlines import run_deadlines

    account = privacy.downstreams.identity.add_account(email="shop@example.nl")
    created = await privacy.request_as_account(account, type="access")
    await privacy.drain()
    zip_path = privacy.settings.exports_path / f"{created['id']}.zip"
    assert zip_path.is_file()
    assert not (privacy.settings.exports_path / "parts" / created["id"]).exists()
    privacy.clock.advance(timedelta(days=7, minutes=1))
    report = await run_deadlines(collaborators_of(privacy.app.state))
    assert report.exports_purged == 1
    assert not zip_path.exists()
    gone = await privacy.client.get(
        f"/v1/privacy/requests/{created['id']}/export", headers=privacy.user(account)
    )
    assert gone.status_code == 410
    body = await privacy.get_request(created["id"], privacy.user(account))
    assert body["export"]["available"] is False


def _records() -> list[dict[str, Any]]:
    """Records as services send them: categories of several tables whose columns differ, and
    values that CSV has to quote, convert or leave empty."""
    lines: list[dict[str, Any]] = []
    for i in range(4):
        lines.append(
            {
                "category": "shipments",
                "table": "shipments",
                "record": {
                    "id": f"s{i}",
                    "reference": 'R "quoted", [bracketed] {braced}\nsecond line'
                    if i == 1
                    else None,
                    "price": 1.5 * i,
                    "restricted": i % 2 == 0,
                    "labels": {"a": [1, 2]} if i == 2 else None,
                    "name": "Zoë Ĳsselmeer",
                },
            }
        )
        lines.append(
            {"category": "shipments", "table": "parcels", "record": {"id": f"p{i}", "grams": i}}
        )
        if i == 2:
            lines.append(
                {"category": "shipments", "table": "events", "record": {"tags": ["x"], "id": i}}
            )
    lines += [
        {
            "category": "request_log",
            "table": "request_log",
            "record": {
                "id": f"r{i}",
                "path": [f"/v1/{i}", {"q": None}] if i == 7 else f"/v1/shipments/{i}",
                "status": 200,
            },
        }
        for i in range(25_000)
    ]
    lines.append({"category": "odd ../name", "table": "t", "record": {"k": "v"}})
    lines.append({"category": "odd ../name", "table": "t", "record": {"_table": "x", "k": 1}})
    lines.append({"category": "odd ../name", "table": "u", "record": {}})
    return lines


def _expected(lines: list[dict[str, Any]], service: str) -> dict[str, bytes]:
    """The format of decision 0302, written the plain way."""
    categories: dict[str, tuple[list[dict[str, Any]], dict[str, None]]] = {}
    for item in lines:
        safe = "".join(ch for ch in item["category"] if ch.isalnum() or ch in "_-")
        rows, columns = categories.setdefault(safe, ([], {"_table": None}))
        rows.append({"_table": item["table"], **item["record"]})
        columns.update(dict.fromkeys(item["record"]))
    members = {}
    for safe, (rows, columns) in categories.items():
        members[f"{service}/{safe}.json"] = (
            b"[\n" + b",\n".join(orjson.dumps(row) for row in rows) + b"\n]\n"
        )
        text = io.StringIO(newline="")
        writer = csv.writer(text)
        writer.writerow(columns)
        for row in rows:
            values = [row.get(column) for column in columns]
            writer.writerow(
                [
                    ""
                    if value is None
                    else orjson.dumps(value).decode()
                    if isinstance(value, dict | list)
                    else value
                    for value in values
                ]
            )
        members[f"{service}/{safe}.csv"] = text.getvalue().encode()
    return members


async def test_streamed_parts_give_the_zip_the_records_were_sent_as(tmp_path: Path) -> None:
    lines = _records()
    ndjson = b"".join(orjson.dumps(item) + b"\n" for item in lines)
    writer = PartWriter(tmp_path / "parts" / "shipping")
    await writer.open()
    # Chunks cut anywhere, as they come off the socket.
    for start in range(0, len(ndjson), 7_919):
        await writer.add(ndjson[start : start + 7_919])
    result = await writer.close()
    assert result["records"] == len(lines)
    assert result["categories"]["request_log"] == 25_000
    legacy = tmp_path / "legacy.ndjson"
    legacy.write_bytes(ndjson)

    expected = _expected(lines, "shipping")
    for part in (tmp_path / "parts" / "shipping", legacy):
        stats = build_zip(
            {"shipping": part}, tmp_path / "out.zip", documents=lambda _: [("summary.txt", b"x")]
        )
        members = zip_members((tmp_path / "out.zip").read_bytes())
        assert members.pop("summary.txt") == b"x"
        assert members.keys() == expected.keys()
        for name, content in expected.items():
            assert members[name] == content, name
        assert stats.records == {"shipping": {"shipments": 9, "request_log": 25_000, "oddname": 3}}


async def test_privacys_own_share_keeps_only_the_columns_of_a_disclosures_categories(
    tmp_path: Path,
) -> None:
    request_log = {
        "id": "r1",
        "ip": "198.51.100.23",
        "timestamp": "2026-11-01T10:00:00+00:00",
        "path": "/v1/privacy/consents",
        "method": "GET",
        "status": 200,
        "account_id": "0190aaaa-0000-7000-8000-000000000001",
    }
    consent = {"id": "c1", "account_id": request_log["account_id"], "purpose": "analytics"}
    lines: list[dict[str, Any]] = [
        {"category": "usage", "table": "request_log", "record": request_log},
        {"category": "consent", "table": "consent", "record": consent},
        {"category": "shipments", "table": "shipments", "record": {"id": "s1"}},
    ]
    writer = PartWriter(tmp_path / "privacy", categories={"network"})
    await writer.open()
    for item in lines:
        table = Base.metadata.tables.get(item["table"])
        if table is not None:
            await writer.add(export_meta(table))
        await writer.add(orjson.dumps(item) + b"\n")
    result = await writer.close()
    assert result["categories"] == {"usage": 1, "consent": 1, "shipments": 1}  # as sent
    stats = build_zip(
        {"privacy": tmp_path / "privacy"}, tmp_path / "out.zip", documents=lambda _: []
    )
    # The summary speaks of what the export holds: the IP address, not the rest of the tables.
    assert stats.pii_categories == {"network"}
    members = zip_members((tmp_path / "out.zip").read_bytes())
    assert set(members) == {"privacy/usage.json", "privacy/usage.csv"}
    # The IP address (network) with what says what the entry is; not the pages visited
    # (usage) nor the account id (account_identifier).
    assert orjson.loads(members["privacy/usage.json"]) == [
        {"_table": "request_log", "id": "r1", "ip": "198.51.100.23", "method": "GET", "status": 200}
    ]


async def test_meta_lines_name_the_pii_categories_and_are_no_records(tmp_path: Path) -> None:
    record = {"category": "shipments", "table": "shipments", "record": {"id": "s1"}}
    ndjson = (
        b'{"table":"shipments","pii_categories":["recipient_contact","shipment_details"]}\n'
        + orjson.dumps(record)
        + b'\n{"table":"parcels","pii_categories":[]}\n'
        + orjson.dumps({**record, "table": "parcels"})
        + b'\n{"table":"webhook_endpoints","pii_categories":["contact"]}\n'
    )
    writer = PartWriter(tmp_path / "parts" / "shipping")
    await writer.open()
    for start in range(0, len(ndjson), 13):
        await writer.add(ndjson[start : start + 13])
    result = await writer.close()
    assert result == {"records": 2, "categories": {"shipments": 2}}
    # A service of an earlier release names no categories: its file categories stand in.
    identity = tmp_path / "identity.ndjson"
    identity.write_bytes(b'{"category": "usage", "table": "request_log", "record": {}}\n')

    stats = build_zip(
        {"shipping": tmp_path / "parts" / "shipping", "identity": identity},
        tmp_path / "out.zip",
        documents=lambda _: [],
    )
    assert stats.records == {"shipping": {"shipments": 2}, "identity": {"usage": 1}}
    assert stats.pii_categories == {"recipient_contact", "shipment_details", "contact", "usage"}
    members = zip_members((tmp_path / "out.zip").read_bytes())
    assert orjson.loads(members["shipping/shipments.json"]) == [
        {"_table": "shipments", "id": "s1"},
        {"_table": "parcels", "id": "s1"},
    ]
    assert members["shipping/shipments.csv"].decode().splitlines() == [
        "_table,id",
        "shipments,s1",
        "parcels,s1",
    ]


@pytest.mark.parametrize(
    "line",
    [
        b'{"category": "x", "table": "t", "record": []}',
        b'{"table": "t", "pii_categories": "contact"}',
        b'{"table": "t", "pii_categories": [1]}',
        b'{"table": "t"}',
        b"[]",
    ],
)
async def test_a_malformed_line_is_worth_a_retry_and_leaves_no_part(
    tmp_path: Path, line: bytes
) -> None:
    writer = PartWriter(tmp_path / "shipping")
    await writer.open()
    await writer.add(line + b"\n")
    with pytest.raises(Transient, match="malformed export line"):
        await writer.close()
    await writer.discard()
    assert _entries(tmp_path) == []


def _entries(directory: Path) -> list[Path]:
    return list(directory.iterdir())
