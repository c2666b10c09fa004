"""Durable execution: every service answers before a request completes; outages are waited
out with backoff; a restart resumes without applying anything twice; workers never share a task."""

from __future__ import annotations

import asyncio
import csv
import io
import uuid
from datetime import timedelta
from pathlib import Path

import orjson
import pytest
from sqlalchemy import select, update

from libs.common.clock import ManualClock
from services.privacy_api.models import PrivacyTask, TaskStatus
from services.privacy_api.settings import PrivacySettings
from tests.support.privacy_doubles import Downstreams
from tests.support.privacy_harness import (
    Privacy,
    isolated_databases,
    start_privacy,
    zip_members,
)
from tests.support.smtp import Inbox
from tests.support.tokens import TokenIssuer


async def test_access_request_completes_with_every_services_data_as_json_and_csv(
    privacy: Privacy,
) -> None:
    identity, shipping = privacy.downstreams.identity, privacy.downstreams.shipping
    account = identity.add_account(email="shop@example.nl", kvk_number="87654321")
    for _ in range(3):
        shipping.add_shipment(sender=account)
    created = await privacy.request_as_account(account, type="access")
    await privacy.drain()

    done = await privacy.get_request(created["id"], privacy.user(account))
    assert done["status"] == "completed"
    assert {t["status"] for t in done["tasks"]} == {"succeeded"}
    download = await privacy.client.get(
        f"/v1/privacy/requests/{created['id']}/export", headers=privacy.user(account)
    )
    assert download.status_code == 200
    assert download.headers["content-type"] == "application/zip"
    files = zip_members(download.content)
    account_rows = orjson.loads(files["identity/account.json"])
    assert account_rows[0]["kvk_number"] == "87654321"
    assert account_rows[0]["iban"] == "NL91ABNA0417164300"
    assert account_rows[0]["_table"] == "accounts"
    assert len(orjson.loads(files["shipping/shipments.json"])) == 3
    assert len(orjson.loads(files["identity/request_log.json"])) == 3  # request-log entries
    log_csv = list(csv.DictReader(io.StringIO(files["identity/request_log.csv"].decode())))
    assert [row["ip"] for row in log_csv] == ["198.51.100.23"] * 3
    own = orjson.loads(files["privacy/privacy_request.json"])
    assert own[0]["id"] == created["id"]
    assert own[0]["access_token_hash"] is None  # a secret is never exported
    assert "Autoriteit Persoonsgegevens" in files["summary.txt"].decode()
    mail = (await privacy.inbox.wait_for("shop@example.nl"))[-1]
    assert f"/v1/privacy/requests/{created['id']}/export" in privacy.inbox.body(mail)


async def test_access_summary_names_the_purposes_and_recipients_of_the_accounts_data(
    privacy: Privacy,
) -> None:
    account = privacy.downstreams.identity.add_account(email="shop@example.nl")
    privacy.downstreams.shipping.add_shipment(sender=account)
    created = await privacy.request_as_account(account, type="access")
    await privacy.drain()
    download = await privacy.client.get(
        f"/v1/privacy/requests/{created['id']}/export", headers=privacy.user(account)
    )
    summary = zip_members(download.content)["summary.txt"].decode()
    for promised in ("AVG art. 6(1)(b)", "Mollie", "7 years", "We doen ons werk"):
        assert promised in summary


async def test_recipient_erasure_removes_name_email_and_phone_but_tracking_answers(
    privacy: Privacy,
) -> None:
    shipping = privacy.downstreams.shipping
    parcel = shipping.add_shipment(recipient_email="piet@example.nl", recipient_name="Piet")
    other = shipping.add_shipment(recipient_email="klaas@example.nl", recipient_name="Klaas")
    created, token = await privacy.request_by_email("Piet@Example.nl", type="erasure")
    await privacy.drain()

    done = await privacy.get_request(created["id"], {"X-Privacy-Request-Token": token})
    assert done["status"] == "completed"
    for field in ("recipient_name", "recipient_email", "recipient_phone"):
        assert parcel.record[field] is None
    assert other.record["recipient_name"] == "Klaas"
    tracking = await privacy.app.state.http.get(
        f"http://shipping.test/v1/tracking/{parcel.record['tracking_code']}"
    )
    assert tracking.json()["status"] == "delivered"
    shipping_task = next(t for t in done["tasks"] if t["service"] == "shipping")
    assert shipping_task["result"]["erased"] == {"shipments": 1}
    assert shipping_task["result"]["kept"][0]["field"] == "price_cents"
    body = privacy.inbox.body((await privacy.inbox.wait_for("piet@example.nl"))[-1])
    assert "kept shipments.price_cents" in body
    assert "Art. 52 AWR" in body


async def test_erasure_waits_while_shipping_is_down_and_completes_when_it_returns(
    privacy: Privacy,
) -> None:
    account = privacy.downstreams.identity.add_account(email="shop@example.nl")
    privacy.downstreams.shipping.add_shipment(sender=account)
    privacy.downstreams.take_down("shipping")
    created = await privacy.request_as_account(account, type="erasure")
    await privacy.drain()

    waiting = await privacy.get_request(created["id"])
    assert waiting["status"] == "in_progress"
    shipping_task = next(t for t in waiting["tasks"] if t["service"] == "shipping")
    assert shipping_task["status"] == "pending"
    assert "unreachable" in shipping_task["last_error"]
    assert privacy.inbox.to("shop@example.nl") == []

    # Backoff grows while it stays down: the next try is later than the first.
    privacy.clock.advance(timedelta(seconds=6))
    await privacy.drain()
    privacy.clock.advance(timedelta(seconds=6))
    await privacy.drain()
    again = next(
        t for t in (await privacy.get_request(created["id"]))["tasks"] if t["service"] == "shipping"
    )
    assert again["attempts"] == 2

    privacy.downstreams.bring_up("shipping")
    privacy.clock.advance(timedelta(minutes=5))
    await privacy.drain()
    done = await privacy.get_request(created["id"])
    assert done["status"] == "completed"
    assert privacy.downstreams.shipping.applied[("erase", created["id"])] == 1
    await privacy.inbox.wait_for("shop@example.nl")


async def test_a_service_answering_503_is_retried_not_failed(privacy: Privacy) -> None:
    account = privacy.downstreams.identity.add_account(email="shop@example.nl")
    created = await privacy.request_as_account(account, type="restriction")
    privacy.downstreams.shipping.unavailable = True
    await privacy.drain()
    task = next(
        t for t in (await privacy.get_request(created["id"]))["tasks"] if t["service"] == "shipping"
    )
    assert task["status"] == "pending"
    assert "unavailable" in task["last_error"]
    privacy.downstreams.shipping.unavailable = False
    privacy.clock.advance(timedelta(minutes=1))
    await privacy.drain()
    assert (await privacy.get_request(created["id"]))["status"] == "completed"


async def test_rectification_refused_by_the_service_fails_with_the_reason(
    privacy: Privacy,
) -> None:
    account = privacy.downstreams.identity.add_account(email="shop@example.nl")
    created = await privacy.request_as_account(
        account, type="rectification", changes={"identity": {"iban": "NL00BANK0000000000"}}
    )
    assert [(t["service"], t["action"]) for t in created["tasks"]] == [("identity", "rectify")]
    await privacy.drain()
    failed = await privacy.get_request(created["id"], privacy.user(account))
    assert failed["status"] == "failed"
    assert failed["tasks"][0]["status"] == "failed"
    assert "changes.iban" in failed["tasks"][0]["last_error"]
    assert "iban" in failed["failure_reason"]
    body = privacy.inbox.body((await privacy.inbox.wait_for("shop@example.nl"))[-1])
    assert "could not be completed" in body


async def test_rectification_is_applied_by_the_owning_service(privacy: Privacy) -> None:
    identity = privacy.downstreams.identity
    account = identity.add_account(email="shop@example.nl")
    created = await privacy.request_as_account(
        account, type="rectification", changes={"identity": {"street": "Kerkstraat"}}
    )
    await privacy.drain()
    done = await privacy.get_request(created["id"])
    assert done["status"] == "completed"
    assert done["tasks"][0]["result"]["fields"] == ["street"]
    assert identity.rows_about(account_id=account)[0].record["street"] == "Kerkstraat"


async def test_restriction_flags_the_subject_in_every_service(privacy: Privacy) -> None:
    identity, shipping = privacy.downstreams.identity, privacy.downstreams.shipping
    account = identity.add_account(email="shop@example.nl")
    parcel = shipping.add_shipment(sender=account)
    created = await privacy.request_as_account(account, type="restriction")
    await privacy.drain()
    assert (await privacy.get_request(created["id"]))["status"] == "completed"
    assert parcel.restricted_basis == {"restriction"}
    assert identity.rows_about(account_id=account)[0].restricted_basis == {"restriction"}
    consents = await privacy.client.get("/v1/privacy/consents", headers=privacy.user(account))
    assert consents.json()["restricted"] is True


async def test_objection_withdraws_consents_records_it_and_restricts_with_basis_objection(
    privacy: Privacy,
) -> None:
    identity, shipping = privacy.downstreams.identity, privacy.downstreams.shipping
    account = identity.add_account(email="shop@example.nl")
    parcel = shipping.add_shipment(sender=account)
    headers = privacy.user(account)
    given = await privacy.client.put(
        "/v1/privacy/consents",
        json={
            "profiling": {"granted": True, "text_version": "2018-05-24"},
            "personalised_ads": {"granted": True, "text_version": "2018-05-24"},
            "analytics_cookies": {"granted": True, "text_version": "2018-05-24"},
            "source": "account_settings",
        },
        headers=headers,
    )
    assert given.status_code == 200
    created = await privacy.request_as_account(
        account, type="objection", grounds="I do not want to be profiled."
    )
    await privacy.drain()
    assert (await privacy.get_request(created["id"]))["status"] == "completed"
    assert parcel.restricted_basis == {"objection"}
    state = (await privacy.client.get("/v1/privacy/consents", headers=headers)).json()
    granted = {c["purpose"]: c["granted"] for c in state["consents"]}
    assert granted == {"profiling": False, "personalised_ads": False, "analytics_cookies": True}
    assert state["objection"] is True
    history = (await privacy.client.get("/v1/privacy/consents/history", headers=headers)).json()
    withdrawals = [e for e in history["data"] if e["source"] == "objection_request"]
    assert {e["purpose"] for e in withdrawals} == {"profiling", "personalised_ads"}
    assert all(e["privacy_request_id"] == created["id"] for e in withdrawals)


async def test_nothing_runs_before_verification(privacy: Privacy) -> None:
    privacy.downstreams.shipping.add_shipment(recipient_email="piet@example.nl")
    response = await privacy.client.post(
        "/v1/privacy/requests", json={"type": "erasure", "email": "piet@example.nl"}
    )
    assert response.status_code == 201
    await privacy.drain()
    assert privacy.downstreams.shipping.calls == {}


async def test_expired_lease_of_a_crashed_worker_is_taken_over(privacy: Privacy) -> None:
    account = privacy.downstreams.identity.add_account(email="shop@example.nl")
    created = await privacy.request_as_account(account, type="erasure")
    async with privacy.app.state.database.session() as session:
        # A worker claimed the identity task and died (no outcome recorded).
        await session.execute(
            update(PrivacyTask)
            .where(
                PrivacyTask.request_id == uuid.UUID(created["id"]),
                PrivacyTask.service == "identity",
            )
            .values(
                status=TaskStatus.RUNNING.value,
                lease_owner="dead-worker",
                lease_expires_at=privacy.clock.now() + timedelta(minutes=5),
                attempts=1,
            )
        )
        await session.commit()
    await privacy.drain()
    assert (await privacy.get_request(created["id"]))["status"] == "in_progress"
    privacy.clock.advance(timedelta(minutes=6))
    await privacy.drain()
    done = await privacy.get_request(created["id"])
    assert done["status"] == "completed"
    identity_task = next(t for t in done["tasks"] if t["service"] == "identity")
    assert identity_task["attempts"] == 2


async def test_a_claim_whose_answer_was_lost_is_handed_back_not_left_to_its_lease(
    privacy: Privacy,
) -> None:
    account = privacy.downstreams.identity.add_account(email="shop@example.nl")
    created = await privacy.request_as_account(account, type="erasure")
    worker = privacy.worker
    async with privacy.app.state.database.session() as session:
        # This worker's claim was committed, but the database went away before it heard so.
        await session.execute(
            update(PrivacyTask)
            .where(
                PrivacyTask.request_id == uuid.UUID(created["id"]),
                PrivacyTask.service == "identity",
            )
            .values(
                status=TaskStatus.RUNNING.value,
                lease_owner=worker.owner,
                lease_expires_at=privacy.clock.now() + timedelta(minutes=5),
                attempts=1,
            )
        )
        await session.commit()
    worker._claims_uncertain = True
    await privacy.drain()
    # Well within the lease: handed back and carried out.
    done = await privacy.get_request(created["id"])
    assert done["status"] == "completed"
    identity_task = next(t for t in done["tasks"] if t["service"] == "identity")
    assert identity_task["attempts"] == 2


# --------------------------------------------------------------------------------------------
# On a database of their own: apps that stop and start, workers that run side by side.
# --------------------------------------------------------------------------------------------


async def test_worker_stopped_mid_request_and_a_new_app_completes_it_once(
    privacy_settings: PrivacySettings,
    tmp_path: Path,
    issuer: TokenIssuer,
    downstreams: Downstreams,
    clock: ManualClock,
    smtp: tuple[str, Inbox],
) -> None:
    from tests.support.privacy_harness import privacy_test_settings

    settings = privacy_test_settings(privacy_settings, tmp_path)
    account = downstreams.identity.add_account(email="shop@example.nl")
    downstreams.shipping.add_shipment(sender=account)
    async with isolated_databases(settings, tmp_path) as databases:
        async with start_privacy(
            settings, databases(), issuer=issuer, downstreams=downstreams, clock=clock, smtp=smtp
        ) as first:
            created = await first.request_as_account(account, type="erasure")
            assert await first.worker.run_one_task()  # one service done, then the app stops
        done_before = sum(
            downstreams_applied
            for downstreams_applied in (
                downstreams.identity.applied[("erase", created["id"])],
                downstreams.shipping.applied[("erase", created["id"])],
            )
        )
        assert done_before <= 1

        restarted = privacy_test_settings(privacy_settings, tmp_path, worker_enabled=True)
        async with start_privacy(
            restarted, databases(), issuer=issuer, downstreams=downstreams, clock=clock, smtp=smtp
        ) as second:
            # The worker started by the app's lifespan picks the request up by itself.
            for _ in range(500):
                body = await second.get_request(created["id"])
                if body["status"] == "completed":
                    break
                await asyncio.sleep(0.02)
            assert body["status"] == "completed"
            await smtp[1].wait_for("shop@example.nl")
    assert downstreams.identity.applied[("erase", created["id"])] == 1
    assert downstreams.shipping.applied[("erase", created["id"])] == 1
    assert downstreams.identity.calls[("erase", created["id"])] == 1
    assert downstreams.shipping.calls[("erase", created["id"])] == 1
    assert len(smtp[1].to("shop@example.nl")) == 1


async def test_workers_side_by_side_never_run_the_same_task(
    privacy_settings: PrivacySettings,
    tmp_path: Path,
    issuer: TokenIssuer,
    downstreams: Downstreams,
    clock: ManualClock,
    smtp: tuple[str, Inbox],
) -> None:
    from services.privacy_api.context import collaborators_of
    from services.privacy_api.tasks.worker import Worker
    from tests.support.privacy_harness import privacy_test_settings

    settings = privacy_test_settings(privacy_settings, tmp_path)
    accounts = [downstreams.identity.add_account(email=f"s{i}@example.nl") for i in range(8)]
    async with (
        isolated_databases(settings, tmp_path) as databases,
        start_privacy(
            settings, databases(), issuer=issuer, downstreams=downstreams, clock=clock, smtp=smtp
        ) as harness,
    ):
        ids = [(await harness.request_as_account(a, type="erasure"))["id"] for a in accounts]
        workers = [
            Worker(collaborators_of(harness.app.state), owner=f"worker-{i}") for i in range(4)
        ]
        await asyncio.gather(*(worker.run_until_idle() for worker in workers))
        await harness.drain()
        async with databases().session() as session:
            tasks = (await session.scalars(select(PrivacyTask))).all()
        assert len(tasks) == 24
        assert {task.status for task in tasks} == {"succeeded"}
        assert {task.attempts for task in tasks} == {1}
        for request_id in ids:
            assert downstreams.identity.calls[("erase", request_id)] == 1
            assert downstreams.shipping.calls[("erase", request_id)] == 1
            assert (await harness.get_request(request_id))["status"] == "completed"


@pytest.mark.parametrize("service", ["identity", "shipping"])
async def test_identity_or_shipping_down_never_fails_a_request(
    privacy: Privacy, service: str
) -> None:
    account = privacy.downstreams.identity.add_account(email="shop@example.nl")
    created = await privacy.request_as_account(account, type="access")
    privacy.downstreams.take_down(service)
    for _ in range(6):
        privacy.clock.advance(timedelta(minutes=20))
        await privacy.drain()
    assert (await privacy.get_request(created["id"]))["status"] == "in_progress"
    privacy.downstreams.bring_up(service)
    privacy.clock.advance(timedelta(minutes=20))
    await privacy.drain()
    assert (await privacy.get_request(created["id"]))["status"] == "completed"


async def test_a_verified_request_starts_at_once_not_at_the_next_poll(
    privacy_settings: PrivacySettings,
    tmp_path: Path,
    issuer: TokenIssuer,
    downstreams: Downstreams,
    clock: ManualClock,
    smtp: tuple[str, Inbox],
) -> None:
    from tests.support.privacy_harness import privacy_test_settings

    # A poll this long would fail the test: only the wake-up after the commit can start it.
    settings = privacy_test_settings(
        privacy_settings, tmp_path, worker_enabled=True, worker_poll_seconds=60
    )
    account = downstreams.identity.add_account(email="shop@example.nl")
    async with (
        isolated_databases(settings, tmp_path) as databases,
        start_privacy(
            settings, databases(), issuer=issuer, downstreams=downstreams, clock=clock, smtp=smtp
        ) as harness,
    ):
        # Let every lane reach its wait first.
        await asyncio.sleep(0.2)
        created = await harness.request_as_account(account, type="access")
        for _ in range(250):
            body = await harness.get_request(created["id"])
            if body["status"] == "completed":
                break
            await asyncio.sleep(0.02)
        assert body["status"] == "completed"
