"""``python -m services.privacy_api serve|migrate|downgrade|purge-request-log|worker|deadlines``"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator, Sequence

from fastapi import FastAPI

from libs.common.app import Overrides
from libs.common.cli import Command, main_for, run_cli
from libs.common.logging import get_logger
from libs.common.settings import BaseServiceSettings
from services.privacy_api.app import MIGRATIONS_DIR, create_app
from services.privacy_api.context import collaborators_of
from services.privacy_api.deadlines import run_deadlines
from services.privacy_api.models import RequestLog
from services.privacy_api.settings import PrivacySettings


@contextlib.asynccontextmanager
async def _started(
    settings: PrivacySettings, overrides: Overrides | None
) -> AsyncIterator[FastAPI]:
    """The app's lifespan without serving HTTP: database, HTTP client, mailer, token provider."""
    app = create_app(settings, overrides)
    async with app.router.lifespan_context(app):
        yield app


async def run_worker(settings: PrivacySettings, overrides: Overrides | None = None) -> None:
    """A worker process: the same worker the API runs, until SIGTERM/SIGINT."""
    settings = settings.model_copy(update={"worker_enabled": False, "request_log_to_db": False})
    async with _started(settings, overrides) as app:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, stop.set)
        await app.state.worker.run(stop)


async def deadlines(settings: PrivacySettings, overrides: Overrides | None = None) -> int:
    settings = settings.model_copy(update={"worker_enabled": False, "request_log_to_db": False})
    async with _started(settings, overrides) as app:
        report = await run_deadlines(collaborators_of(app.state))
        # The summary goes out now: a CronJob does not wait for a worker to pick it up.
        await app.state.worker.send_mail()
        get_logger("cli").info(
            "deadlines_done",
            overdue_requests=len(report.overdue_requests),
            overdue_incidents=len(report.overdue_incidents),
            exports_purged=report.exports_purged,
            audit_log_purged=report.audit_log_purged,
        )
    return 0


def _worker_command(_: argparse.Namespace, settings: BaseServiceSettings) -> int:
    assert isinstance(settings, PrivacySettings)  # noqa: S101
    asyncio.run(run_worker(settings))
    return 0


def _deadlines_command(_: argparse.Namespace, settings: BaseServiceSettings) -> int:
    assert isinstance(settings, PrivacySettings)  # noqa: S101
    return asyncio.run(deadlines(settings))


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(
        settings_factory=PrivacySettings,
        app_factory="services.privacy_api.app:create_app",
        migrations_dir=MIGRATIONS_DIR,
        request_log_model=RequestLog,
        commands=[
            Command(
                name="worker",
                help="run the privacy-request worker (tasks, completion mail, export purge)",
                configure=lambda parser: None,
                run=_worker_command,
            ),
            Command(
                name="deadlines",
                help=(
                    "flag overdue requests and incidents, mail the officer, purge old exports"
                    " and expired audit log entries"
                ),
                configure=lambda parser: None,
                run=_deadlines_command,
            ),
        ],
        argv=argv,
    )


if __name__ == "__main__":
    main_for(main)
