"""Fixtures of the privacy tests: privacy_api over a rolled-back database, the identity and
shipping doubles, a manual clock and a real SMTP server."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import stamina

from libs.common.clock import ManualClock
from services.privacy_api.settings import PrivacySettings
from tests.support.privacy_doubles import Downstreams
from tests.support.privacy_harness import (
    Privacy,
    privacy_on_rolled_back,
    privacy_test_settings,
)
from tests.support.smtp import Inbox
from tests.support.tokens import TokenIssuer

NOW = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _no_retry_waits() -> Iterator[None]:
    # ServiceCaller's in-call retries are tested in libs; here the worker's own backoff counts.
    with stamina.set_testing(True, attempts=1):
        yield


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(NOW)


@pytest.fixture
def downstreams(issuer: TokenIssuer) -> Downstreams:
    return Downstreams(issuer)


@pytest.fixture
def settings(privacy_settings: PrivacySettings, tmp_path: Path) -> PrivacySettings:
    return privacy_test_settings(privacy_settings, tmp_path)


@pytest.fixture
async def privacy(
    settings: PrivacySettings,
    issuer: TokenIssuer,
    downstreams: Downstreams,
    clock: ManualClock,
    smtp: tuple[str, Inbox],
) -> AsyncIterator[Privacy]:
    async with privacy_on_rolled_back(
        settings,
        issuer=issuer,
        downstreams=downstreams,
        clock=clock,
        smtp=smtp,
    ) as harness:
        yield harness
