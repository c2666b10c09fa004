"""Fixtures of identity's tests: a running identity app over a rolled-back database."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from services.identity_api.settings import IdentitySettings
from tests.support.identity_app import Identity, fast_settings, identity_app
from tests.support.smtp import Inbox


@pytest.fixture(scope="session")
def settings(identity_settings: IdentitySettings) -> IdentitySettings:
    return fast_settings(identity_settings)


@pytest.fixture
def inbox(smtp: tuple[str, Inbox]) -> Inbox:
    return smtp[1]


@pytest.fixture
async def identity(settings: IdentitySettings, smtp: tuple[str, Inbox]) -> AsyncIterator[Identity]:
    async with identity_app(settings, smtp_url=smtp[0]) as running_identity:
        yield running_identity
