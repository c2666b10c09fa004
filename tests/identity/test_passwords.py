"""Password changes, resets by mail over real SMTP, and hashes upgraded on login."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select, update

from services.identity_api.models import Account
from services.identity_api.passwords.hashing import PasswordHasher
from services.identity_api.passwords.policy import password_problem
from tests.support.identity_app import PASSWORD, Identity, bearer, link_token
from tests.support.smtp import Inbox

NEW_PASSWORD = "zeilboot-molen-tulp-77"
RESET = "/v1/auth/password-reset"


async def confirmed_account(identity: Identity, inbox: Inbox) -> dict[str, Any]:
    """A registered account whose holder followed the confirmation link."""
    account = await identity.register()
    await identity.deliver_mail()
    token = link_token(Inbox.body((await inbox.wait_for(account["email"]))[0]))
    confirmed = await identity.client.post("/v1/auth/verify-email", json={"token": token})
    assert confirmed.status_code == 204
    return account


def reset_links(mails: list[Any]) -> list[str]:
    return [link_token(Inbox.body(m)) for m in mails if "Wachtwoord" in str(m["Subject"])]


async def test_change_password_needs_the_current_one(identity: Identity) -> None:
    _, headers = await identity.user()
    response = await identity.client.post(
        "/v1/accounts/me/password",
        json={"current_password": "not-my-password-1", "new_password": NEW_PASSWORD},
        headers=headers,
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "current_password"


async def test_change_password_signs_out_and_new_password_works(
    identity: Identity, inbox: Inbox
) -> None:
    account = await identity.register()
    tokens = await identity.login(account["email"])
    response = await identity.client.post(
        "/v1/accounts/me/password",
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
        headers=bearer(tokens["access_token"]),
    )
    assert response.status_code == 204
    refresh = await identity.token_response(
        grant_type="refresh_token", refresh_token=tokens["refresh_token"]
    )
    assert refresh.status_code == 400
    old = await identity.token_response(
        grant_type="password", username=account["email"], password=PASSWORD
    )
    assert old.status_code == 400
    await identity.login(account["email"], NEW_PASSWORD)
    await identity.deliver_mail()
    mails = await inbox.wait_for(account["email"], count=2)
    assert any("gewijzigd" in str(mail["Subject"]) for mail in mails)


async def test_new_password_must_pass_the_policy(identity: Identity) -> None:
    _, headers = await identity.user()
    for weak, reason in [("qwerty123456", "common"), ("x" * 129, "at most")]:
        response = await identity.client.post(
            "/v1/accounts/me/password",
            json={"current_password": PASSWORD, "new_password": weak},
            headers=headers,
        )
        assert response.status_code == 422
        assert response.json()["errors"][0]["field"] == "new_password"
        assert reason in response.json()["errors"][0]["message"]


def test_policy_refuses_padded_common_words_and_accepts_passphrases() -> None:
    assert password_problem("Welkom2024!!!") is not None
    assert password_problem("wachtwoord123") is not None
    assert password_problem("dragondragondragon") is not None
    assert password_problem("jan@example.nl!!", context=("jan@example.nl",)) is not None
    assert password_problem("kaas-fiets-regen-42") is None
    assert password_problem("a" * 11 + "b") is not None


async def test_password_reset_by_mail_over_smtp(identity: Identity, inbox: Inbox) -> None:
    account = await confirmed_account(identity, inbox)
    tokens = await identity.login(account["email"])
    response = await identity.client.post(
        "/v1/auth/password-reset", json={"email": account["email"].upper()}
    )
    assert response.status_code == 202
    assert await identity.deliver_mail() == 1
    mails = await inbox.wait_for(account["email"], count=2)
    reset = next(mail for mail in mails if "Wachtwoord" in str(mail["Subject"]))
    token = link_token(Inbox.body(reset))
    assert "/reset-password?token=" in Inbox.body(reset)

    response = await identity.client.post(
        "/v1/auth/password-reset/confirm", json={"token": token, "new_password": NEW_PASSWORD}
    )
    assert response.status_code == 204
    await identity.login(account["email"], NEW_PASSWORD)
    # Every earlier login is signed out.
    refresh = await identity.token_response(
        grant_type="refresh_token", refresh_token=tokens["refresh_token"]
    )
    assert refresh.status_code == 400
    # Single use.
    again = await identity.client.post(
        "/v1/auth/password-reset/confirm", json={"token": token, "new_password": PASSWORD + "x"}
    )
    assert again.status_code == 422
    assert again.json()["errors"][0]["field"] == "token"


async def test_reset_for_an_unknown_address_answers_the_same_and_sends_nothing(
    identity: Identity, inbox: Inbox
) -> None:
    response = await identity.client.post(
        "/v1/auth/password-reset", json={"email": "nobody@example.nl"}
    )
    assert response.status_code == 202
    assert await identity.deliver_mail() == 0
    assert inbox.to("nobody@example.nl") == []


async def test_reset_link_expires(identity: Identity, inbox: Inbox) -> None:
    account = await confirmed_account(identity, inbox)
    await identity.client.post("/v1/auth/password-reset", json={"email": account["email"]})
    await identity.deliver_mail()
    mails = await inbox.wait_for(account["email"], count=2)
    token = link_token(Inbox.body(next(m for m in mails if "Wachtwoord" in str(m["Subject"]))))
    identity.clock.advance(timedelta(minutes=61))
    response = await identity.client.post(
        "/v1/auth/password-reset/confirm", json={"token": token, "new_password": NEW_PASSWORD}
    )
    assert response.status_code == 422


async def test_a_new_reset_link_replaces_the_previous_one(identity: Identity, inbox: Inbox) -> None:
    account = await confirmed_account(identity, inbox)
    for _ in range(2):
        await identity.client.post("/v1/auth/password-reset", json={"email": account["email"]})
    await identity.deliver_mail()
    mails = await inbox.wait_for(account["email"], count=3)
    first, second = [link_token(Inbox.body(m)) for m in mails if "Wachtwoord" in str(m["Subject"])]
    stale = await identity.client.post(
        "/v1/auth/password-reset/confirm", json={"token": first, "new_password": NEW_PASSWORD}
    )
    assert stale.status_code == 422
    fresh = await identity.client.post(
        "/v1/auth/password-reset/confirm", json={"token": second, "new_password": NEW_PASSWORD}
    )
    assert fresh.status_code == 204


async def test_weak_password_on_reset_keeps_the_link_usable(
    identity: Identity, inbox: Inbox
) -> None:
    account = await confirmed_account(identity, inbox)
    await identity.client.post("/v1/auth/password-reset", json={"email": account["email"]})
    await identity.deliver_mail()
    mails = await inbox.wait_for(account["email"], count=2)
    token = link_token(Inbox.body(next(m for m in mails if "Wachtwoord" in str(m["Subject"]))))
    weak = await identity.client.post(
        "/v1/auth/password-reset/confirm", json={"token": token, "new_password": "password1234"}
    )
    assert weak.status_code == 422
    assert weak.json()["errors"][0]["field"] == "new_password"
    ok = await identity.client.post(
        "/v1/auth/password-reset/confirm", json={"token": token, "new_password": NEW_PASSWORD}
    )
    assert ok.status_code == 204


async def test_hash_made_with_old_parameters_is_upgraded_at_login(identity: Identity) -> None:
    account = await identity.register()
    old_hasher = PasswordHasher(time_cost=1, memory_cost_kib=2048, parallelism=1)
    old_hash = await old_hasher.hash(PASSWORD)
    async with identity.database.session() as session:
        await session.execute(
            update(Account).where(Account.email == account["email"]).values(password_hash=old_hash)
        )
        await session.commit()
    await identity.login(account["email"])
    async with identity.database.session() as session:
        stored = await session.scalar(
            select(Account.password_hash).where(Account.email == account["email"])
        )
    assert stored is not None
    assert stored != old_hash
    assert "m=1024,t=1,p=1" in stored
    await identity.login(account["email"])


async def test_reset_for_an_unconfirmed_address_answers_as_for_an_unknown_one_and_mails_nothing(
    identity: Identity, inbox: Inbox
) -> None:
    account = await identity.register()
    assert account["email_verified"] is False
    unconfirmed = await identity.client.post(RESET, json={"email": account["email"]})
    unknown = await identity.client.post(RESET, json={"email": "nobody@example.nl"})
    assert unconfirmed.status_code == unknown.status_code == 202
    assert unconfirmed.content == unknown.content
    assert await identity.deliver_mail() == 1  # only the confirmation link of the registration
    mails = await inbox.wait_for(account["email"])
    assert reset_links(mails) == []


async def test_a_reset_link_mailed_before_an_email_change_is_refused_after_it(
    identity: Identity, inbox: Inbox
) -> None:
    account = await confirmed_account(identity, inbox)
    await identity.client.post(RESET, json={"email": account["email"]})
    await identity.deliver_mail()
    (token,) = reset_links(await inbox.wait_for(account["email"], count=2))
    tokens = await identity.login(account["email"])
    changed = await identity.client.patch(
        "/v1/accounts/me",
        json={"email": "new-address@example.nl", "current_password": PASSWORD},
        headers=bearer(tokens["access_token"]),
    )
    assert changed.status_code == 200

    response = await identity.client.post(
        "/v1/auth/password-reset/confirm", json={"token": token, "new_password": NEW_PASSWORD}
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "token"
    await identity.login("new-address@example.nl", PASSWORD)
