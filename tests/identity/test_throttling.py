"""Failed logins are throttled per account and per IP address, without an oracle."""

from __future__ import annotations

import secrets

from services.identity_api.settings import IdentitySettings
from tests.support.identity_app import PASSWORD, Identity, identity_app
from tests.support.redis import redis_or_skip


async def test_twelve_wrong_passwords_get_429_and_the_right_one_still_waits(
    identity: Identity,
) -> None:
    account = await identity.register()
    statuses = []
    for attempt in range(12):
        response = await identity.token_response(
            grant_type="password", username=account["email"], password=f"wrong-password-{attempt}"
        )
        statuses.append(response.status_code)
    assert statuses[:10] == [400] * 10
    assert statuses[10:] == [429, 429]
    assert int(response.headers["retry-after"]) > 0
    assert response.headers["content-type"] == "application/problem+json"
    right = await identity.token_response(
        grant_type="password", username=account["email"], password=PASSWORD
    )
    assert right.status_code == 429
    assert int(right.headers["retry-after"]) > 0


async def test_unknown_email_is_throttled_the_same_way(identity: Identity) -> None:
    for attempt in range(10):
        response = await identity.token_response(
            grant_type="password", username="ghost@example.nl", password=f"wrong-{attempt}-xxxxx"
        )
        assert response.status_code == 400
    response = await identity.token_response(
        grant_type="password", username="ghost@example.nl", password="wrong-again-xxxxx"
    )
    assert response.status_code == 429


async def test_one_address_trying_many_accounts_is_throttled(identity: Identity) -> None:
    account = await identity.register()
    for attempt in range(50):
        await identity.token_response(
            grant_type="password", username=f"victim{attempt}@example.nl", password="Summer2024!!"
        )
    # A different account, never guessed before, but from the same address.
    response = await identity.token_response(
        grant_type="password", username=account["email"], password=PASSWORD
    )
    assert response.status_code == 429


async def test_throttling_of_one_account_leaves_others_alone(identity: Identity) -> None:
    victim = await identity.register()
    other = await identity.register()
    for attempt in range(11):
        await identity.token_response(
            grant_type="password", username=victim["email"], password=f"wrong-password-{attempt}"
        )
    response = await identity.token_response(
        grant_type="password", username=other["email"], password=PASSWORD
    )
    assert response.status_code == 200


async def test_throttling_is_shared_through_redis(settings: IdentitySettings) -> None:
    """With ``REDIS_URL`` every process counts the same failures (here: two app instances)."""
    redis_url = "redis://127.0.0.1:6379/1"
    await redis_or_skip(redis_url)
    shared = settings.model_copy(update={"redis_url": redis_url})
    # A fresh address and e-mail per run: the counters outlive the test in Redis.
    address = (f"198.51.100.{secrets.randbelow(250) + 1}", 40000)
    email = f"redis-{secrets.token_hex(6)}@example.nl"
    async with identity_app(shared, client_address=address) as first:
        await first.register(email=email)
        for attempt in range(6):
            response = await first.token_response(
                grant_type="password", username=email, password=f"wrong-password-{attempt}"
            )
            assert response.status_code == 400
    async with identity_app(shared, client_address=address) as second:
        await second.register(email=email)
        for attempt in range(4):
            await second.token_response(
                grant_type="password", username=email, password=f"wrong-again-{attempt}"
            )
        response = await second.token_response(
            grant_type="password", username=email, password=PASSWORD
        )
    assert response.status_code == 429
    assert int(response.headers["retry-after"]) > 0
