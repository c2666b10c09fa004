"""Access exports: big accounts export in seconds with bounded memory; only the subject downloads;
the ZIP is deleted after its retention period."""

from __future__ import annotations

import time
import tracemalloc
from datetime import timedelta
from pathlib import Path

import orjson

from services.privacy_api.exports.builder import build_zip
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
                category="usage",
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
    assert len(orjson.loads(files["identity/usage.json"])) == 100_000
    assert files["identity/usage.csv"].count(b"\n") == 100_001  # header + rows
    assert len(orjson.loads(files["shipping/recipient_contact.json"])) == 10_000
    summary = orjson.loads(files["summary.json"])
    assert summary["records"]["identity"]["usage"] == 100_000


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
    assert (
        orjson.loads(files["shipping/recipient_contact.json"])[0]["recipient_email"]
        == "piet@example.nl"
    )


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
    assert "identity/contact.json" in zip_members(download.content)
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
