"""What each service reports about its own queues on ``/metrics`` (decision 0804): the outboxes'
backlog, how long due work has been waiting (a stopped worker shows here first), messages given
up on, and privacy_api's tasks. The services run in-process over a rolled-back database; their
clocks stand ten minutes in the past, so what they queue "now" has been due for ten minutes."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import stamina
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select, update

from libs.common.app import Overrides
from libs.common.clock import ManualClock
from libs.common.metrics import Metrics
from services.identity_api.models import OutboxMail
from services.identity_api.settings import IdentitySettings
from services.privacy_api.models import MailOutbox, PrivacyTask, TaskStatus
from services.privacy_api.settings import PrivacySettings
from services.shipping_api.app import create_app as create_shipping_app
from services.shipping_api.models import WebhookDelivery
from services.shipping_api.settings import ShippingSettings
from tests.deploy.test_metrics import value
from tests.support.db import rolled_back
from tests.support.identity_app import fast_settings, identity_app
from tests.support.privacy_doubles import Downstreams
from tests.support.privacy_harness import (
    privacy_on_rolled_back,
    privacy_test_settings,
)
from tests.support.shipping_apps import running_shipping
from tests.support.shipping_carriers import carrier_event, push_event
from tests.support.shipping_factories import shipment_body
from tests.support.smtp import Inbox
from tests.support.tokens import TokenIssuer, bearer

Samples = dict[str, list[tuple[dict[str, str], float]]]
WAITED = timedelta(minutes=10)


@pytest.fixture(autouse=True)
def _no_retry_waits() -> Iterator[None]:
    with stamina.set_testing(True, attempts=1):
        yield


def ten_minutes_ago() -> ManualClock:
    return ManualClock(datetime.now(UTC).replace(microsecond=0) - WAITED)


async def scrape(app: FastAPI, client: httpx.AsyncClient) -> Samples:
    """``/metrics`` as Prometheus reads it, with the database gauges computed right now."""
    metrics: Metrics = app.state.metrics
    await metrics.refresh_database_gauges(force=True)
    response = await client.get("/metrics")
    assert response.status_code == 200
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((sample.labels, sample.value))
    return samples


def assert_waited_about_ten_minutes(seconds: float) -> None:
    assert WAITED.total_seconds() - 5 <= seconds <= WAITED.total_seconds() + 120


def assert_no_gauge_failed(samples: Samples) -> None:
    assert all(count == 0 for _, count in samples["database_gauge_errors_total"])


async def test_identity_reports_mail_waiting_due_and_given_up(
    identity_settings: IdentitySettings,
) -> None:
    clock = ten_minutes_ago()
    async with identity_app(fast_settings(identity_settings), clock=clock) as identity:
        await identity.register()  # queues the e-mail confirmation
        async with identity.database.session() as session:
            session.add(
                OutboxMail(
                    to_address="webshop@example.nl",
                    subject="Reset your password",
                    body_text="...",
                    attempts=25,
                    next_attempt_at=clock.now(),
                    failed_at=clock.now(),
                    last_error="SMTP refused",
                )
            )
            await session.commit()
        samples = await scrape(identity.app, identity.client)

    assert value(samples, "outbox_backlog", outbox="mail") == 1
    assert value(samples, "outbox_failed", outbox="mail") == 1
    assert_waited_about_ten_minutes(value(samples, "outbox_oldest_due_seconds", outbox="mail"))
    assert_no_gauge_failed(samples)


async def test_identity_reports_an_empty_outbox_as_zero(
    identity_settings: IdentitySettings,
) -> None:
    async with identity_app(fast_settings(identity_settings)) as identity:
        samples = await scrape(identity.app, identity.client)
    assert value(samples, "outbox_backlog", outbox="mail") == 0
    assert value(samples, "outbox_oldest_due_seconds", outbox="mail") == 0
    assert value(samples, "outbox_failed", outbox="mail") == 0


async def test_shipping_reports_webhook_and_recipient_mail_outboxes(
    shipping_settings: ShippingSettings, issuer: TokenIssuer
) -> None:
    settings = shipping_settings.model_copy(
        update={"outbox_worker_enabled": False, "webhook_allow_loopback": True}
    )
    account_id = uuid.uuid4()
    key = bearer(issuer.api_keys.issue(account_id))
    async with (
        rolled_back(settings) as database,
        running_shipping(
            create_shipping_app,
            settings,
            Overrides(
                database=database, clock=ten_minutes_ago(), authenticator=issuer.authenticator()
            ),
        ) as (app, client),
    ):
        endpoint = await client.post(
            "/v1/webhook-endpoints",
            json={
                "url": "http://127.0.0.1:9/parcel-events",
                "events": ["shipment.handed_to_carrier"],
            },
            headers=key,
        )
        assert endpoint.status_code == 201, endpoint.text
        for number in range(2):
            created = await client.post("/v1/shipments", json=shipment_body(), headers=key)
            assert created.status_code == 201, created.text
            # Handed to the carrier: a webhook delivery and an e-mail to the recipient.
            event = carrier_event(
                created.json()["tracking_code"], "handed_to_carrier", f"scan-{number}"
            )
            moved = await push_event(client, "postnl", event)
            assert moved.status_code == 200, moved.text
        async with database.session() as session:
            queued = (await session.scalars(select(WebhookDelivery.id))).all()
            await session.execute(
                update(WebhookDelivery)
                .where(WebhookDelivery.id == queued[0])
                .values(state="failed", next_attempt_at=None)
            )
            await session.commit()
        samples = await scrape(app, client)

    assert value(samples, "outbox_backlog", outbox="webhooks") == len(queued) - 1
    assert value(samples, "outbox_failed", outbox="webhooks") == 1
    assert value(samples, "outbox_backlog", outbox="recipient_mail") == 2
    assert value(samples, "outbox_failed", outbox="recipient_mail") == 0
    for outbox in ("webhooks", "recipient_mail"):
        assert_waited_about_ten_minutes(value(samples, "outbox_oldest_due_seconds", outbox=outbox))
    assert_no_gauge_failed(samples)


async def test_privacy_reports_tasks_by_service_and_status_and_its_mail_outbox(
    privacy_settings: PrivacySettings,
    issuer: TokenIssuer,
    smtp: tuple[str, Inbox],
    tmp_path: Path,
) -> None:
    settings = privacy_test_settings(privacy_settings, tmp_path)
    downstreams = Downstreams(issuer)
    clock = ten_minutes_ago()
    async with privacy_on_rolled_back(
        settings,
        issuer=issuer,
        downstreams=downstreams,
        clock=clock,
        smtp=smtp,
    ) as privacy:
        account = downstreams.identity.add_account(email="shop@example.nl")
        await privacy.request_as_account(account, type="access")
        async with privacy.app.state.database.session() as session:
            await session.execute(
                update(PrivacyTask)
                .where(PrivacyTask.service == "shipping")
                .values(status=TaskStatus.FAILED, last_error="422: unknown field")
            )
            session.add(
                MailOutbox(
                    recipient="shop@example.nl",
                    subject="Your privacy request",
                    body="...",
                    created_at=clock.now(),
                    next_attempt_at=clock.now(),
                    attempts=0,
                )
            )
            await session.commit()
        samples = await scrape(privacy.app, privacy.client)

    # Succeeded tasks are not counted (they only ever grow); nothing runs here.
    assert sorted(
        (labels["service"], labels["status"], n) for labels, n in samples["privacy_tasks"]
    ) == [
        ("identity", "pending", 1),
        ("privacy", "pending", 1),
        ("shipping", "failed", 1),
    ]
    assert_waited_about_ten_minutes(value(samples, "privacy_task_oldest_due_seconds"))
    assert value(samples, "outbox_backlog", outbox="mail") == 1
    assert_waited_about_ten_minutes(value(samples, "outbox_oldest_due_seconds", outbox="mail"))
    assert_no_gauge_failed(samples)
