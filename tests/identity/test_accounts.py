"""An account holder reads and changes their own account."""

from __future__ import annotations

import pytest

from tests.support.identity_app import PASSWORD, Identity, bearer
from tests.support.smtp import Inbox


async def test_me_shows_the_account_with_iban_in_full(identity: Identity) -> None:
    account, headers = await identity.user()
    response = await identity.client.get("/v1/accounts/me", headers=headers)
    assert response.status_code == 200
    assert response.json() == account
    assert response.json()["iban"] == "NL91ABNA0417164300"
    assert response.headers["cache-control"] == "no-store"


async def test_me_without_login_is_401(identity: Identity) -> None:
    response = await identity.client.get("/v1/accounts/me")
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")


async def test_patch_changes_only_the_fields_sent(identity: Identity) -> None:
    account, headers = await identity.user()
    response = await identity.client.patch(
        "/v1/accounts/me",
        json={"phone": "+32 470 12 34 56", "website": None, "postcode": "1011ab"},
        headers=headers,
    )
    assert response.status_code == 200
    changed = response.json()
    assert changed["phone"] == "+32470123456"
    assert changed["website"] is None
    assert changed["postcode"] == "1011 AB"
    assert changed["name"] == account["name"]
    assert changed["debtor_number"] == account["debtor_number"]


@pytest.mark.parametrize("field", ["role", "account_id", "debtor_number", "password_hash"])
async def test_patch_with_a_server_owned_field_is_422(identity: Identity, field: str) -> None:
    _, headers = await identity.user()
    response = await identity.client.patch(
        "/v1/accounts/me", json={field: "admin"}, headers=headers
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == field


async def test_patch_cannot_empty_a_required_field(identity: Identity) -> None:
    _, headers = await identity.user()
    response = await identity.client.patch("/v1/accounts/me", json={"name": None}, headers=headers)
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "name"


async def test_patch_checks_the_postcode_against_the_stored_country(identity: Identity) -> None:
    _, headers = await identity.user(country="NL")
    response = await identity.client.patch(
        "/v1/accounts/me", json={"postcode": "B-1000"}, headers=headers
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "postcode"


async def test_patch_with_bad_iban_is_422_naming_iban(identity: Identity) -> None:
    _, headers = await identity.user()
    response = await identity.client.patch(
        "/v1/accounts/me", json={"iban": "NL00BANK0000000000"}, headers=headers
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "iban"


async def test_patch_to_an_email_in_use_is_409(identity: Identity) -> None:
    other = await identity.register()
    _, headers = await identity.user()
    response = await identity.client.patch(
        "/v1/accounts/me",
        json={"email": other["email"].upper(), "current_password": PASSWORD},
        headers=headers,
    )
    assert response.status_code == 409
    assert [e["field"] for e in response.json()["errors"]] == ["email"]
    assert (await identity.client.get("/v1/accounts/me", headers=headers)).json()["email"] != other[
        "email"
    ]


async def test_changing_email_needs_confirmation_again_and_tells_the_old_address(
    identity: Identity, inbox: Inbox
) -> None:
    account, headers = await identity.user()
    await identity.deliver_mail()
    response = await identity.client.patch(
        "/v1/accounts/me",
        json={"email": "new-address@example.nl", "current_password": PASSWORD},
        headers=headers,
    )
    assert response.status_code == 200
    assert response.json()["email_verified"] is False
    await identity.deliver_mail()
    to_old = await inbox.wait_for(account["email"], count=2)
    assert "new-address@example.nl" in Inbox.body(to_old[-1])
    to_new = await inbox.wait_for("new-address@example.nl")
    assert "verify-email?token=" in Inbox.body(to_new[0])


REDIRECTING_CHANGES = [
    pytest.param({"email": "attacker@example.net"}, id="email"),
    pytest.param({"iban": "NL02ABNA0123456789"}, id="iban"),
]


@pytest.mark.parametrize("change", REDIRECTING_CHANGES)
async def test_changing_email_or_iban_without_the_current_password_is_422_naming_it(
    identity: Identity, change: dict[str, str]
) -> None:
    account, headers = await identity.user()
    response = await identity.client.patch("/v1/accounts/me", json=change, headers=headers)
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == ["current_password"]
    assert (await identity.client.get("/v1/accounts/me", headers=headers)).json() == account


@pytest.mark.parametrize("change", REDIRECTING_CHANGES)
async def test_a_wrong_current_password_gets_the_password_changes_answer(
    identity: Identity, change: dict[str, str]
) -> None:
    account, headers = await identity.user()
    wrong = "not-my-password-1"
    response = await identity.client.patch(
        "/v1/accounts/me", json={**change, "current_password": wrong}, headers=headers
    )
    password_change = await identity.client.post(
        "/v1/accounts/me/password",
        json={"current_password": wrong, "new_password": "zeilboot-molen-tulp-77"},
        headers=headers,
    )
    assert response.status_code == password_change.status_code == 422
    assert response.json()["errors"] == password_change.json()["errors"]
    assert (await identity.client.get("/v1/accounts/me", headers=headers)).json() == account


@pytest.mark.parametrize("change", REDIRECTING_CHANGES)
async def test_changing_email_or_iban_with_the_current_password_is_200(
    identity: Identity, change: dict[str, str]
) -> None:
    _, headers = await identity.user()
    response = await identity.client.patch(
        "/v1/accounts/me", json={**change, "current_password": PASSWORD}, headers=headers
    )
    assert response.status_code == 200
    assert "current_password" not in response.json()
    me = (await identity.client.get("/v1/accounts/me", headers=headers)).json()
    assert {name: me[name] for name in change} == change


async def test_wrong_current_passwords_on_an_email_change_count_as_failed_logins(
    identity: Identity,
) -> None:
    account, headers = await identity.user()
    attempts = int(identity.settings.login_failures_per_account.split("/")[0])
    for _ in range(attempts):
        guess = await identity.client.patch(
            "/v1/accounts/me",
            json={"email": "attacker@example.net", "current_password": "a-wrong-guess-1"},
            headers=headers,
        )
        assert guess.status_code == 422
    response = await identity.client.patch(
        "/v1/accounts/me",
        json={"email": "attacker@example.net", "current_password": PASSWORD},
        headers=headers,
    )
    assert response.status_code == 429
    login = await identity.token_response(
        grant_type="password", username=account["email"], password=PASSWORD
    )
    assert login.status_code == 429


async def test_other_fields_change_without_the_current_password(identity: Identity) -> None:
    account, headers = await identity.user()
    response = await identity.client.patch(
        "/v1/accounts/me",
        json={"phone": "+31612345678", "email": account["email"].upper(), "iban": account["iban"]},
        headers=headers,
    )
    assert response.status_code == 200
    assert response.json()["phone"] == "+31612345678"


async def test_api_key_cannot_manage_the_account(identity: Identity) -> None:
    _, headers = await identity.user()
    key = await identity.api_key(headers)
    response = await identity.client.get("/v1/accounts/me", headers=bearer(key["key"]))
    assert response.status_code == 403


async def test_security_events_are_listed_newest_first_with_cursor(identity: Identity) -> None:
    account, headers = await identity.user()
    for _ in range(2):
        await identity.login(account["email"])
    first = await identity.client.get(
        "/v1/accounts/me/security-events", params={"limit": 2}, headers=headers
    )
    assert first.status_code == 200
    page = first.json()
    assert [event["type"] for event in page["data"]] == ["login_succeeded", "login_succeeded"]
    assert page["data"][0]["ip"] == "203.0.113.7"
    second = await identity.client.get(
        "/v1/accounts/me/security-events",
        params={"limit": 2, "cursor": page["next_cursor"]},
        headers=headers,
    )
    types = [event["type"] for event in second.json()["data"]]
    assert types == ["login_succeeded", "registered"]
    assert second.json()["next_cursor"] is None


async def test_failed_login_is_a_security_event(identity: Identity) -> None:
    account, headers = await identity.user()
    response = await identity.token_response(
        grant_type="password", username=account["email"], password="wrong-password-123"
    )
    assert response.status_code == 400
    events = await identity.client.get("/v1/accounts/me/security-events", headers=headers)
    assert events.json()["data"][0]["type"] == "login_failed"
