"""The command line every service shares: ``serve``, ``migrate``, ``downgrade``,
``purge-request-log``; services add their own commands."""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import uvicorn

from libs.common.db import Database, create_engine
from libs.common.logging import configure_logging, get_logger
from libs.common.request_log import RequestLogMixin, purge_expired_request_log
from libs.common.settings import REQUEST_LOG_RETENTION_DAYS, BaseServiceSettings


def _request_log_days(value: str) -> int:
    """A retention of 1 to 90 days: the register promises request logs are gone after 90."""
    try:
        days = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of days: {value!r}") from None
    if not 1 <= days <= REQUEST_LOG_RETENTION_DAYS:
        raise argparse.ArgumentTypeError(
            f"{days} days: request logs are kept 1 to {REQUEST_LOG_RETENTION_DAYS} days"
        )
    return days


@dataclass
class Command:
    name: str
    help: str
    configure: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace, BaseServiceSettings], int]


def migration_config(settings: BaseServiceSettings, migrations_dir: Path):  # type: ignore[no-untyped-def]
    # Alembic is imported only by the processes that migrate (docs/decisions/0708).
    from libs.common.migrations import alembic_config

    return alembic_config(
        migrations_dir,
        database_url=settings.database_url,
        schema=settings.db_schema,
        version_table=settings.version_table,
    )


def upgrade_schema(
    settings: BaseServiceSettings, migrations_dir: Path, revision: str = "head"
) -> None:
    from libs.common.migrations import upgrade

    upgrade(migration_config(settings, migrations_dir), revision)


def upgrade_in_a_child(settings: BaseServiceSettings, migrations_dir: Path) -> None:
    """Migrate to head in a forked child before serving: the serving process then holds no
    Alembic, no templates and no migration modules (~7-11 MB; docs/decisions/0708)."""
    # Whatever the parent has buffered would otherwise be written by the child as well.
    sys.stdout.flush()
    sys.stderr.flush()
    child = multiprocessing.get_context("fork").Process(
        target=upgrade_schema, args=(settings, migrations_dir), name="migrate"
    )
    child.start()
    child.join()
    if child.exitcode != 0:
        raise SystemExit(f"migrating the database failed (exit code {child.exitcode})")


def database_for(settings: BaseServiceSettings) -> Database:
    return Database(
        create_engine(
            settings.database_url,
            schema=settings.db_schema,
            application_name=f"parcelpro-{settings.service_name}-cli",
        )
    )


def run_cli(
    *,
    settings_factory: Callable[[], BaseServiceSettings],
    app_factory: str,
    migrations_dir: Path,
    request_log_model: type[RequestLogMixin],
    commands: Sequence[Command] = (),
    argv: Sequence[str] | None = None,
) -> int:
    settings = settings_factory()
    parser = argparse.ArgumentParser(prog=f"python -m services.{settings.service_name}_api")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the HTTP service (migrates first on SQLite)")
    serve.add_argument("--host", default=settings.host)
    serve.add_argument("--port", type=int, default=settings.port)
    serve.add_argument("--workers", type=int, default=1)
    serve.add_argument("--no-migrate", action="store_true", help="never migrate on start")

    migrate = sub.add_parser("migrate", help="upgrade the database schema")
    migrate.add_argument("--revision", default="head")

    down = sub.add_parser("downgrade", help="downgrade the database schema")
    down.add_argument("revision")

    purge_log = sub.add_parser("purge-request-log", help="delete expired request-log entries")
    purge_log.add_argument(
        "--retention-days", type=_request_log_days, default=settings.request_log_retention_days
    )

    extra = {command.name: command for command in commands}
    for command in commands:
        command.configure(sub.add_parser(command.name, help=command.help))

    args = parser.parse_args(argv)
    configure_logging(settings.service_name, settings.log_level)
    log = get_logger("cli")

    if args.command == "migrate":
        upgrade_schema(settings, migrations_dir, args.revision)
        log.info("migrated", revision=args.revision)
        return 0
    if args.command == "downgrade":
        from libs.common.migrations import downgrade

        downgrade(migration_config(settings, migrations_dir), args.revision)
        log.info("downgraded", revision=args.revision)
        return 0
    if args.command == "purge-request-log":

        async def purge() -> int:
            database = database_for(settings)
            try:
                return await purge_expired_request_log(
                    database.sessionmaker, request_log_model, retention_days=args.retention_days
                )
            finally:
                await database.dispose()

        deleted = asyncio.run(purge())
        log.info("request_log_purged", deleted=deleted)
        return 0
    if args.command == "serve":
        if settings.migrate_on_start and not args.no_migrate:
            upgrade_in_a_child(settings, migrations_dir)
        uvicorn.run(
            app_factory,
            factory=True,
            host=args.host,
            port=args.port,
            workers=args.workers,
            loop="uvloop",
            http="httptools",
            access_log=False,
            proxy_headers=False,  # the request log applies its own trusted-proxy rule
            server_header=False,
            timeout_graceful_shutdown=settings.shutdown_timeout_seconds,
            log_config=None,
        )
        return 0
    return extra[args.command].run(args, settings)


def main_for(run: Callable[[], int]) -> None:
    sys.exit(run())
