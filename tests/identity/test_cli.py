"""``rotate-signing-key`` and ``reencrypt-fields`` on the command line (committed to the test
database, so each test removes what it made)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import pytest
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.cli import database_for
from libs.common.crypto import generate_key
from libs.common.db import utcnow
from services.identity_api.__main__ import main
from services.identity_api.accounts.service import iban_context, seal_iban
from services.identity_api.models import Account, SigningKey
from services.identity_api.settings import DEV_FIELD_KEY, DEV_FIELD_KEY_ID, IdentitySettings


def on_database(settings: IdentitySettings, work: Callable[[AsyncSession], Awaitable[Any]]) -> Any:
    async def run() -> Any:
        database = database_for(settings)
        try:
            async with database.sessionmaker() as session:
                result = await work(session)
                await session.commit()
                return result
        finally:
            await database.dispose()

    return asyncio.run(run())


def last_json(capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    output: dict[str, Any] = orjson.loads(capsys.readouterr().out.strip().splitlines()[-1])
    return output


def test_rotate_signing_key_publishes_a_key_that_signs_later(
    identity_settings: IdentitySettings,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("IDENTITY_DATABASE_URL", identity_settings.database_url)
    assert main(["rotate-signing-key"]) == 0
    kid = last_json(capsys)["kid"]

    async def find(session: AsyncSession) -> SigningKey | None:
        return await session.get(SigningKey, kid)

    async def remove(session: AsyncSession) -> None:
        await session.execute(delete(SigningKey).where(SigningKey.kid == kid))

    try:
        key = on_database(identity_settings, find)
        assert key is not None
        assert key.activates_at > utcnow()
        assert key.private_key_encrypted.startswith("aesgcm:")
    finally:
        on_database(identity_settings, remove)


def test_reencrypt_fields_moves_values_to_the_active_key(
    identity_settings: IdentitySettings,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    old_cipher = identity_settings.field_cipher()
    account_id = uuid.uuid4()

    async def add(session: AsyncSession) -> None:
        now = utcnow()
        session.add(
            Account(
                id=account_id,
                email=f"{account_id.hex}@example.nl",
                debtor_number=f"9{account_id.int % 10**9:09d}",
                name="Oud B.V.",
                postcode="3191 EE",
                house_number="22",
                street="Griede",
                city="Rotterdam",
                country="NL",
                iban_encrypted=seal_iban(old_cipher, account_id, "NL91ABNA0417164300"),
                created_at=now,
                updated_at=now,
            )
        )

    async def stored(session: AsyncSession) -> str | None:
        value: str | None = await session.scalar(
            select(Account.iban_encrypted).where(Account.id == account_id)
        )
        return value

    async def remove(session: AsyncSession) -> None:
        await session.execute(delete(Account).where(Account.id == account_id))

    new_key = generate_key()
    keys = {DEV_FIELD_KEY_ID: DEV_FIELD_KEY, "2026-11": new_key}
    monkeypatch.setenv("IDENTITY_DATABASE_URL", identity_settings.database_url)
    monkeypatch.setenv("IDENTITY_FIELD_ENCRYPTION_KEYS", orjson.dumps(keys).decode())
    monkeypatch.setenv("IDENTITY_FIELD_ENCRYPTION_ACTIVE_KEY", "2026-11")
    on_database(identity_settings, add)
    try:
        assert main(["reencrypt-fields"]) == 0
        assert last_json(capsys)["accounts.iban"] >= 1
        value = on_database(identity_settings, stored)
        assert value is not None
        assert value.startswith("aesgcm:2026-11:")
        rotated = IdentitySettings(field_encryption_keys={"2026-11": new_key}).field_cipher()
        assert rotated.decrypt(value, context=iban_context(account_id)) == "NL91ABNA0417164300"
    finally:
        on_database(identity_settings, remove)
        # Signing keys re-sealed with the test key would not open in later tests.
        monkeypatch.setenv("IDENTITY_FIELD_ENCRYPTION_ACTIVE_KEY", DEV_FIELD_KEY_ID)
        main(["reencrypt-fields"])


@pytest.mark.parametrize("days", ["91", "0", "ninety"])
def test_purge_request_log_refuses_a_retention_the_register_does_not_allow(
    days: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["purge-request-log", "--retention-days", days])
    assert exited.value.code == 2
    assert "--retention-days" in capsys.readouterr().err
