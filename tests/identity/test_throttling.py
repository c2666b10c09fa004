"""Failed logins are throttled per account and per IP address, without an oracle."""

from __future__ import annotations

import secrets
from datetime import timedelta
from http.cookies import SimpleCookie

import httpx
import pytest

from services.identity_api.auth.service import DEVICE_COOKIE
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


# --------------------------------------------------------------------------------------------
# Known devices (decision 0105): an attacker's failures do not lock the owner's browser out
# --------------------------------------------------------------------------------------------


def _device_cookie(response: httpx.Response) -> str:
    [set_cookie] = response.headers.get_list("set-cookie")
    cookie = SimpleCookie(set_cookie)[DEVICE_COOKIE]
    assert cookie["httponly"] is True
    assert cookie["secure"] is True
    assert cookie["samesite"].lower() == "strict"
    assert cookie["path"] == "/v1/auth/token"
    assert int(cookie["max-age"]) == 180 * 86_400
    return cookie.value


async def _login_on(
    identity: Identity, email: str, password: str, cookie: str | None
) -> httpx.Response:
    return await identity.client.post(
        "/v1/auth/token",
        data={"grant_type": "password", "username": email, "password": password},
        headers={"Cookie": f"{DEVICE_COOKIE}={cookie}"} if cookie else {},
    )


async def _lock_out(identity: Identity, email: str) -> None:
    """Someone else guesses: from their own addresses, so only the login name's count fills."""
    for attempt in range(11):
        await identity.client.post(
            "/v1/auth/token",
            data={"grant_type": "password", "username": email, "password": f"guess-{attempt}"},
        )


async def test_a_password_login_sets_a_device_cookie_for_the_token_path_only(
    identity: Identity,
) -> None:
    account = await identity.register()
    response = await _login_on(identity, account["email"], PASSWORD, None)
    assert response.status_code == 200
    assert _device_cookie(response).startswith("v1.")
    wrong = await _login_on(identity, account["email"], "not-the-password-1", None)
    assert "set-cookie" not in wrong.headers


async def test_a_known_device_logs_in_while_the_login_name_is_throttled(
    identity: Identity,
) -> None:
    account = await identity.register()
    device = _device_cookie(await _login_on(identity, account["email"], PASSWORD, None))
    await _lock_out(identity, account["email"])

    assert (await _login_on(identity, account["email"], PASSWORD, None)).status_code == 429
    owner = await _login_on(identity, account["email"], PASSWORD, device)
    assert owner.status_code == 200
    assert _device_cookie(owner) != device  # a new one with every login


async def test_a_known_device_is_throttled_on_its_own_failures(identity: Identity) -> None:
    account = await identity.register()
    device = _device_cookie(await _login_on(identity, account["email"], PASSWORD, None))
    statuses = [
        (await _login_on(identity, account["email"], f"wrong-{n}-xxxxxx", device)).status_code
        for n in range(11)
    ]
    assert statuses == [400] * 10 + [429]
    assert (await _login_on(identity, account["email"], PASSWORD, device)).status_code == 429
    # The device's failures are its own: browsers without it are not throttled by them.
    assert (await _login_on(identity, account["email"], PASSWORD, None)).status_code == 200


@pytest.mark.parametrize("kind", ["another login's", "tampered", "expired", "garbled"])
async def test_a_cookie_that_is_not_this_logins_device_is_an_unknown_device(
    identity: Identity, kind: str
) -> None:
    account = await identity.register()
    other = await identity.register()
    mine = _device_cookie(await _login_on(identity, account["email"], PASSWORD, None))
    theirs = _device_cookie(await _login_on(identity, other["email"], PASSWORD, None))
    if kind == "expired":
        identity.clock.advance(timedelta(days=181))
    await _lock_out(identity, account["email"])
    cookie = {
        "another login's": theirs,
        "tampered": mine[:-1] + ("0" if mine[-1] != "0" else "1"),
        "expired": mine,
        "garbled": "v1.not-a-time.x.y",
    }[kind]
    response = await _login_on(identity, account["email"], PASSWORD, cookie)
    assert response.status_code == 429


async def test_a_garbled_cookie_does_not_stop_a_login(identity: Identity) -> None:
    account = await identity.register()
    response = await _login_on(identity, account["email"], PASSWORD, "v1." + "9" * 300)
    assert response.status_code == 200
