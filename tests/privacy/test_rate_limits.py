"""Rate limits are shared by every process of the service when Redis is configured."""

from __future__ import annotations

import secrets

import pytest
import redis

from libs.common.clock import ManualClock
from services.privacy_api.settings import PrivacySettings
from tests.support.db import rolled_back
from tests.support.privacy_doubles import Downstreams
from tests.support.privacy_harness import start_privacy
from tests.support.smtp import Inbox
from tests.support.tokens import TokenIssuer

REDIS_URL = "redis://127.0.0.1:6379/3"


def redis_available() -> bool:
    try:
        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=0.5).ping())
    except redis.RedisError:
        return False


@pytest.mark.skipif(not redis_available(), reason="Redis is not running")
async def test_two_processes_share_the_per_address_limit_through_redis(
    settings: PrivacySettings,
    issuer: TokenIssuer,
    downstreams: Downstreams,
    clock: ManualClock,
    smtp: tuple[str, Inbox],
) -> None:
    shared = settings.model_copy(update={"redis_url": REDIS_URL})
    email = f"r{secrets.token_hex(6)}@example.nl"  # a fresh key in the shared Redis
    client = (f"198.18.{secrets.randbelow(250)}.{secrets.randbelow(250) + 1}", 40000)
    statuses = []
    async with rolled_back(shared) as database:
        for _ in range(2):  # two app processes, one after the other, same Redis
            async with start_privacy(
                shared,
                database,
                issuer=issuer,
                downstreams=downstreams,
                clock=clock,
                smtp=smtp,
                client_address=client,
            ) as privacy:
                for _ in range(2):
                    response = await privacy.client.post(
                        "/v1/privacy/requests", json={"type": "access", "email": email}
                    )
                    statuses.append(response.status_code)
    assert statuses == [201, 201, 201, 429]  # 3 a day per e-mail address
