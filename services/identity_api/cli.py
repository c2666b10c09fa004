"""Identity's own commands: ``create-staff``, ``rotate-signing-key``, ``purge-expired``,
``reencrypt-fields``."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys

import orjson
from sqlalchemy import select

from libs.common.cli import Command, database_for
from libs.common.clock import Clock
from libs.common.errors import DomainError
from libs.common.settings import BaseServiceSettings
from services.identity_api.accounts.service import iban_context
from services.identity_api.housekeeping import run_housekeeping
from services.identity_api.models import Account, SigningKey, StaffRole
from services.identity_api.runtime import IdentityRuntime
from services.identity_api.settings import IdentitySettings
from services.identity_api.signing_keys.service import private_key_context
from services.identity_api.staff.service import create_staff


def _read_password(args: argparse.Namespace) -> str:
    if args.password:
        return str(args.password)
    if sys.stdin.isatty():
        first = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != first:
            raise SystemExit("the passwords differ")
        return first
    return sys.stdin.readline().rstrip("\r\n")


def _configure_create_staff(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--email", required=True)
    parser.add_argument("--role", required=True, choices=[role.value for role in StaffRole])
    parser.add_argument("--name", default=None)
    parser.add_argument("--password", default=None, help="read from standard input when not given")


def _run_create_staff(args: argparse.Namespace, settings: BaseServiceSettings) -> int:
    assert isinstance(settings, IdentitySettings)  # noqa: S101
    password = _read_password(args)

    async def create() -> dict[str, str]:
        runtime = IdentityRuntime.from_settings(settings)
        database = database_for(settings)
        try:
            async with database.sessionmaker() as session:
                staff = await create_staff(
                    session,
                    runtime.passwords,
                    email=args.email,
                    role=StaffRole(args.role),
                    password=password,
                    name=args.name,
                    now=Clock().now(),
                )
                await session.commit()
                return {"id": str(staff.id), "email": staff.email, "role": staff.role}
        finally:
            await database.dispose()

    try:
        created = asyncio.run(create())
    except DomainError as exc:
        print(f"error: {exc.detail}", file=sys.stderr)
        return 1
    sys.stdout.write(orjson.dumps(created).decode() + "\n")
    return 0


def _configure_rotate(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--immediately",
        action="store_true",
        help="sign with the new key now and unpublish the old ones (after a key leak: every "
        "access token signed before is refused)",
    )


def _run_rotate(args: argparse.Namespace, settings: BaseServiceSettings) -> int:
    assert isinstance(settings, IdentitySettings)  # noqa: S101

    async def rotate() -> dict[str, str]:
        runtime = IdentityRuntime.from_settings(settings)
        database = database_for(settings)
        try:
            async with database.sessionmaker() as session:
                key = await runtime.keys.rotate(
                    session, Clock().now(), immediately=args.immediately
                )
                await session.commit()
                return {"kid": key.kid, "activates_at": key.activates_at.isoformat()}
        finally:
            await database.dispose()

    sys.stdout.write(orjson.dumps(asyncio.run(rotate())).decode() + "\n")
    return 0


def _run_reencrypt(_args: argparse.Namespace, settings: BaseServiceSettings) -> int:
    """Re-seal values of retired field-encryption keys with the active key, so the retired
    keys can be removed from the settings."""
    assert isinstance(settings, IdentitySettings)  # noqa: S101
    cipher = settings.field_cipher()
    current = f"aesgcm:{cipher.active_key_id}:%"

    async def reencrypt() -> dict[str, int]:
        database = database_for(settings)
        counts = {"accounts.iban": 0, "signing_keys.private_key": 0}
        try:
            async with database.sessionmaker() as session:
                accounts = await session.stream_scalars(
                    select(Account).where(
                        Account.iban_encrypted.is_not(None),
                        Account.iban_encrypted.not_like(current),
                    )
                )
                async for account in accounts:
                    assert account.iban_encrypted is not None  # noqa: S101
                    context = iban_context(account.id)
                    plain = cipher.decrypt(account.iban_encrypted, context=context)
                    account.iban_encrypted = cipher.encrypt(plain, context=context)
                    counts["accounts.iban"] += 1
                keys = await session.scalars(
                    select(SigningKey).where(SigningKey.private_key_encrypted.not_like(current))
                )
                for key in keys:
                    context = private_key_context(key.kid)
                    plain = cipher.decrypt(key.private_key_encrypted, context=context)
                    key.private_key_encrypted = cipher.encrypt(plain, context=context)
                    counts["signing_keys.private_key"] += 1
                await session.commit()
        finally:
            await database.dispose()
        return counts

    sys.stdout.write(orjson.dumps(asyncio.run(reencrypt())).decode() + "\n")
    return 0


def _run_purge(_args: argparse.Namespace, settings: BaseServiceSettings) -> int:
    assert isinstance(settings, IdentitySettings)  # noqa: S101

    async def purge() -> dict[str, int]:
        database = database_for(settings)
        try:
            return await run_housekeeping(database.sessionmaker, settings, now=Clock().now())
        finally:
            await database.dispose()

    sys.stdout.write(orjson.dumps(asyncio.run(purge())).decode() + "\n")
    return 0


COMMANDS = [
    Command(
        name="create-staff",
        help="create a staff user (support, privacy_officer or admin)",
        configure=_configure_create_staff,
        run=_run_create_staff,
    ),
    Command(
        name="rotate-signing-key",
        help="publish a new token-signing key; it signs once every verifier can know it",
        configure=_configure_rotate,
        run=_run_rotate,
    ),
    Command(
        name="purge-expired",
        help="delete erased accounts past their fiscal retention, expired credentials, and "
        "security events and staff access log entries past their retention",
        configure=lambda parser: None,
        run=_run_purge,
    ),
    Command(
        name="reencrypt-fields",
        help="re-encrypt stored values with the active field-encryption key",
        configure=lambda parser: None,
        run=_run_reencrypt,
    ),
]
