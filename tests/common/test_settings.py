"""Settings: service prefixes, shared unprefixed names, safe defaults."""

from __future__ import annotations

import ipaddress

import pytest
from pydantic import ValidationError

from services.identity_api.settings import IdentitySettings
from services.shipping_api.settings import ShippingSettings


def test_prefixed_and_shared_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHIPPING_DATABASE_URL", "postgresql+asyncpg://u@db/pp")
    monkeypatch.setenv("IDENTITY_DATABASE_URL", "postgresql+asyncpg://u@db/other")
    monkeypatch.setenv("SMTP_URL", "smtp://mail:25")
    monkeypatch.setenv("TRUSTED_PROXIES", "10.0.0.0/8, 127.0.0.1")
    settings = ShippingSettings()
    assert settings.database_url == "postgresql+asyncpg://u@db/pp"
    assert settings.db_schema == "shipping"
    assert settings.smtp_url == "smtp://mail:25"
    assert settings.trusted_proxies == [
        ipaddress.ip_network("10.0.0.0/8"),
        ipaddress.ip_network("127.0.0.1/32"),
    ]
    assert settings.migrate_on_start is False
    assert settings.port == 8002


def test_embedded_default_is_a_sqlite_file_per_service(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("IDENTITY_DATABASE_URL", raising=False)
    monkeypatch.setenv("VAR_DIR", "/tmp/pp-var")
    settings = IdentitySettings()
    assert settings.database_url == "sqlite+aiosqlite:////tmp/pp-var/identity.db"
    assert settings.db_schema is None
    assert settings.migrate_on_start is True
    assert settings.version_table == "identity_alembic_version"


def test_cors_wildcard_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CORS_ORIGINS", "https://app.parcelpro.nl,*")
    with pytest.raises(ValidationError, match="CORS_ORIGINS"):
        ShippingSettings()
