"""Fixtures every test package shares."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from services.identity_api.settings import IdentitySettings
from services.privacy_api.settings import PrivacySettings
from services.shipping_api.settings import ShippingSettings
from tests.support.db import database_url, migrate_fresh
from tests.support.smtp import Inbox, smtp_server
from tests.support.stack import Stack, running_stack
from tests.support.tokens import TokenIssuer


@pytest.fixture(scope="session")
def sqlite_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("sqlite")


@pytest.fixture
def issuer() -> TokenIssuer:
    return TokenIssuer()


@pytest.fixture
def smtp() -> Iterator[tuple[str, Inbox]]:
    with smtp_server() as server:
        yield server


def _migrated(settings_cls: type, service: str, sqlite_dir: Path, migrations_dir: Path) -> object:
    settings = settings_cls(
        database_url=database_url(service, sqlite_dir),
        environment="test",
        request_log_to_db=False,
        var_dir=sqlite_dir / "var",
    )
    migrate_fresh(settings, migrations_dir)
    return settings


@pytest.fixture(scope="session")
def identity_settings(sqlite_dir: Path) -> IdentitySettings:
    from services.identity_api.app import MIGRATIONS_DIR

    settings = _migrated(IdentitySettings, "identity", sqlite_dir, MIGRATIONS_DIR)
    assert isinstance(settings, IdentitySettings)
    return settings


@pytest.fixture(scope="session")
def shipping_settings(sqlite_dir: Path) -> ShippingSettings:
    from services.shipping_api.app import MIGRATIONS_DIR

    settings = _migrated(ShippingSettings, "shipping", sqlite_dir, MIGRATIONS_DIR)
    assert isinstance(settings, ShippingSettings)
    return settings


@pytest.fixture(scope="session")
def privacy_settings(sqlite_dir: Path) -> PrivacySettings:
    from services.privacy_api.app import MIGRATIONS_DIR

    settings = _migrated(PrivacySettings, "privacy", sqlite_dir, MIGRATIONS_DIR)
    assert isinstance(settings, PrivacySettings)
    return settings


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The platform as real processes, started once per test session (see tests/support/stack)."""
    with running_stack(tmp_path_factory.mktemp("stack")) as running:
        yield running
