"""``python -m services.shipping_api`` with ``serve``, ``migrate``, ``downgrade``,
``purge-request-log``, ``purge``, ``deliver-outbox`` and ``reseal-webhook-secrets``."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import orjson

from libs.common.auth import ServiceTokenProvider
from libs.common.cli import Command, database_for, main_for, run_cli
from libs.common.clock import Clock
from libs.common.http import ServiceCaller, create_http_client
from libs.common.logging import get_logger
from libs.common.mail import mailer_from_settings
from libs.common.settings import BaseServiceSettings
from services.shipping_api.app import MIGRATIONS_DIR
from services.shipping_api.models import RequestLog
from services.shipping_api.notifications.account_notices import AccountNoticeDispatcher
from services.shipping_api.notifications.sender import RecipientMailSender
from services.shipping_api.retention.service import run_retention
from services.shipping_api.settings import ShippingSettings
from services.shipping_api.webhooks.delivery import WebhookDispatcher
from services.shipping_api.webhooks.service import ResealReport, WebhookPolicy, reseal_secrets
from services.shipping_api.webhooks.ssrf import Resolver
from services.shipping_api.workers import drain_outboxes


def _moment(value: str) -> datetime:
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError("give a time zone, e.g. 2026-11-25T03:00:00Z")
    return moment.astimezone(UTC)


def _configure_purge(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--now", type=_moment, help="purge as if it were this moment (RFC 3339); default: now"
    )


def _purge(args: argparse.Namespace, settings: BaseServiceSettings) -> int:
    assert isinstance(settings, ShippingSettings)  # noqa: S101
    now = args.now or datetime.now(UTC)

    async def purge() -> None:
        database = database_for(settings)
        try:
            report = await run_retention(database.sessionmaker, settings, now=now)
        finally:
            await database.dispose()
        get_logger("cli").info(
            "retention_purged",
            shipments=report.shipments,
            batches=report.batches,
            erased=report.erased,
            webhook_deliveries=report.webhook_deliveries,
            previous_webhook_secrets=report.previous_webhook_secrets,
            idempotency_keys=report.idempotency_keys,
            request_log=report.request_log,
            support_access_log=report.support_access_log,
        )

    asyncio.run(purge())
    return 0


def _configure_deliver(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--once", action="store_true", help="deliver what is due now, then stop (for a CronJob)"
    )


def _deliver(args: argparse.Namespace, settings: BaseServiceSettings) -> int:
    assert isinstance(settings, ShippingSettings)  # noqa: S101

    async def deliver() -> None:
        database = database_for(settings)
        # One client for the process, as in the API process: webhook posts set their own
        # timeout, calls to identity take the client's.
        http = create_http_client(
            service=settings.service_name, timeout_seconds=settings.http_timeout_seconds
        )
        policy = WebhookPolicy(
            resolver=Resolver(),
            allow_loopback=settings.webhook_allow_loopback,
            secrets=settings.webhook_secrets(),
        )
        dispatcher = WebhookDispatcher(
            database.sessionmaker,
            http,
            policy,
            timeout_seconds=settings.webhook_timeout_seconds,
            batch_size=settings.outbox_batch_size,
            disable_after=timedelta(days=settings.webhook_disable_after_days),
        )
        mail = RecipientMailSender(
            database.sessionmaker,
            mailer_from_settings(
                settings.smtp_url, var_dir=settings.var_dir, sender=settings.mail_from
            ),
            public_base_url=settings.public_base_url,
            tracking_page_url=settings.tracking_page_url,
            batch_size=settings.outbox_batch_size,
        )
        identity = ServiceCaller(http, base_url=settings.identity_url, name="identity")
        notices = AccountNoticeDispatcher(
            database.sessionmaker,
            identity,
            ServiceTokenProvider(
                identity,
                client_id=settings.service_client_id,
                client_secret=settings.service_client_secret,
            ),
            batch_size=settings.outbox_batch_size,
        )
        clock: Clock = Clock()
        log = get_logger("cli")
        try:
            while True:
                tried = await drain_outboxes(clock, dispatcher, mail, notices)
                log.info("outbox_drained", tried=tried)
                if args.once:
                    return
                await asyncio.sleep(settings.outbox_poll_seconds)
        finally:
            await http.aclose()
            await database.dispose()

    asyncio.run(deliver())
    return 0


def _reseal(_args: argparse.Namespace, settings: BaseServiceSettings) -> int:
    """Moves the webhook signing secrets to the active key, so that the previous keys can be
    dropped (docs/operations.md, "Rotate keys without downtime"). Exits 1 while some secret
    opens with none of the configured keys."""
    assert isinstance(settings, ShippingSettings)  # noqa: S101

    async def reseal() -> ResealReport:
        database = database_for(settings)
        try:
            return await reseal_secrets(database.sessionmaker, settings.webhook_secrets())
        finally:
            await database.dispose()

    report = asyncio.run(reseal())
    summary = {
        "resealed": report.resealed,
        "current": report.current,
        "unreadable": len(report.unreadable),
        "unreadable_endpoints": [str(endpoint_id) for endpoint_id in report.unreadable],
    }
    sys.stdout.write(orjson.dumps(summary).decode() + "\n")
    return 1 if report.unreadable else 0


COMMANDS = [
    Command(
        name="purge",
        help="erase recipient data past retention; expire delivery log, keys, request log, "
        "support access log",
        configure=_configure_purge,
        run=_purge,
    ),
    Command(
        name="deliver-outbox",
        help="deliver pending webhooks, recipient e-mails and account notices (a worker outside "
        "the API process)",
        configure=_configure_deliver,
        run=_deliver,
    ),
    Command(
        name="reseal-webhook-secrets",
        help="re-seal the webhook signing secrets with the active key (a key rotation)",
        configure=lambda parser: None,
        run=_reseal,
    ),
]


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(
        settings_factory=ShippingSettings,
        app_factory="services.shipping_api.app:create_app",
        migrations_dir=MIGRATIONS_DIR,
        request_log_model=RequestLog,
        commands=COMMANDS,
        argv=argv,
    )


if __name__ == "__main__":
    main_for(main)
