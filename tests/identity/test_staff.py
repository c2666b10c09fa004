"""Staff: created on the command line, logged in through the token endpoint, roles enforced,
and every read of an account holder's data written to the access log."""

from __future__ import annotations

import asyncio
import io
import uuid
from typing import Any

import jwt
import orjson
import pytest
from sqlalchemy import delete, select

from libs.common.cli import database_for
from services.identity_api.__main__ import main
from services.identity_api.models import StaffRole, StaffUser
from services.identity_api.settings import IdentitySettings
from services.identity_api.staff.service import create_staff
from tests.support.identity_app import PASSWORD, Identity

REASON = "ticket 4711: invoice question"
REASON_HEADER = {"X-Access-Reason": REASON}


async def test_staff_token_has_kind_staff_and_roles(identity: Identity) -> None:
    staff_id, headers = await identity.staff(StaffRole.SUPPORT)
    claims = jwt.decode(headers["Authorization"][7:], options={"verify_signature": False})
    assert claims["kind"] == "staff"
    assert claims["roles"] == ["support"]
    assert claims["sub"] == str(staff_id)
    me = await identity.client.get("/v1/staff/me", headers=headers)
    assert me.json()["role"] == "support"


async def test_staff_cannot_use_account_routes(identity: Identity) -> None:
    _, headers = await identity.staff(StaffRole.ADMIN)
    assert (await identity.client.get("/v1/accounts/me", headers=headers)).status_code == 403


async def test_support_reads_an_account_with_masked_iban_and_it_is_audited(
    identity: Identity,
) -> None:
    account = await identity.register()
    support_id, support = await identity.staff(StaffRole.SUPPORT)
    response = await identity.client.get(
        f"/v1/staff/accounts/{account['account_id']}", headers=support | REASON_HEADER
    )
    assert response.status_code == 200
    seen = response.json()
    assert seen["iban"] == "NL91**********4300"
    assert seen["debtor_number"] == account["debtor_number"]

    _, officer = await identity.staff(StaffRole.PRIVACY_OFFICER)
    log = await identity.client.get(
        "/v1/staff/access-log", params={"account_id": account["account_id"]}, headers=officer
    )
    assert log.status_code == 200
    [entry] = log.json()["data"]
    assert entry["staff_id"] == str(support_id)
    assert entry["action"] == "account.read"
    assert entry["reason"] == REASON
    assert "iban" in entry["fields"]
    assert entry["created_at"]


async def logged_reasons(identity: Identity, account_id: str) -> list[str]:
    _, officer = await identity.staff(StaffRole.PRIVACY_OFFICER)
    log = await identity.client.get(
        "/v1/staff/access-log", params={"account_id": account_id}, headers=officer
    )
    assert log.status_code == 200
    return [entry["reason"] for entry in log.json()["data"]]


@pytest.mark.parametrize(
    "headers",
    [{}, {"X-Access-Reason": "abc"}, {"X-Access-Reason": "  ab     "}],
    ids=["missing", "too-short", "blank-padded"],
)
async def test_reading_an_account_without_a_reason_is_422_naming_the_header(
    identity: Identity, headers: dict[str, str]
) -> None:
    account = await identity.register()
    _, support = await identity.staff(StaffRole.SUPPORT)
    response = await identity.client.get(
        f"/v1/staff/accounts/{account['account_id']}", headers=support | headers
    )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    [error] = response.json()["errors"]
    assert (error["field"], error["location"]) == ("X-Access-Reason", "header")
    assert await logged_reasons(identity, account["account_id"]) == []


async def test_searching_without_a_reason_is_422_naming_the_header(identity: Identity) -> None:
    account = await identity.register()
    _, support = await identity.staff(StaffRole.SUPPORT)
    response = await identity.client.get(
        "/v1/staff/accounts", params={"email": account["email"]}, headers=support
    )
    assert response.status_code == 422, response.text
    [error] = response.json()["errors"]
    assert (error["field"], error["location"]) == ("X-Access-Reason", "header")


async def test_deprecated_reason_query_is_still_accepted_and_logged(identity: Identity) -> None:
    account = await identity.register()
    _, support = await identity.staff(StaffRole.SUPPORT)
    read = await identity.client.get(
        f"/v1/staff/accounts/{account['account_id']}",
        params={"reason": "ticket 12: old client"},
        headers=support,
    )
    assert read.status_code == 200, read.text
    search = await identity.client.get(
        "/v1/staff/accounts",
        params={"email": account["email"], "reason": "ticket 13: old client"},
        headers=support,
    )
    assert search.status_code == 200, search.text
    assert sorted(await logged_reasons(identity, account["account_id"])) == [
        "ticket 12: old client",
        "ticket 13: old client",
    ]


async def test_a_too_short_deprecated_reason_query_is_422_naming_it(identity: Identity) -> None:
    account = await identity.register()
    _, support = await identity.staff(StaffRole.SUPPORT)
    response = await identity.client.get(
        f"/v1/staff/accounts/{account['account_id']}", params={"reason": "abc"}, headers=support
    )
    assert response.status_code == 422, response.text
    [error] = response.json()["errors"]
    assert (error["field"], error["location"]) == ("reason", "query")


async def test_the_header_wins_over_the_deprecated_query(identity: Identity) -> None:
    account = await identity.register()
    _, support = await identity.staff(StaffRole.SUPPORT)
    response = await identity.client.get(
        f"/v1/staff/accounts/{account['account_id']}",
        params={"reason": "sent in the query"},
        headers=support | REASON_HEADER,
    )
    assert response.status_code == 200, response.text
    assert await logged_reasons(identity, account["account_id"]) == [REASON]


async def test_openapi_documents_the_header_and_deprecates_the_query(identity: Identity) -> None:
    document = (await identity.client.get("/openapi.json")).json()
    for path in ("/v1/staff/accounts/{account_id}", "/v1/staff/accounts"):
        parameters = {p["name"]: p for p in document["paths"][path]["get"]["parameters"]}
        assert parameters["X-Access-Reason"]["in"] == "header"
        assert not parameters["X-Access-Reason"].get("deprecated", False)
        assert parameters["reason"]["in"] == "query"
        assert parameters["reason"]["deprecated"] is True
        assert not parameters["reason"].get("required", False)
        assert "X-Access-Reason" in parameters["reason"]["description"]


async def test_search_by_email_is_audited_with_the_address_as_its_blind_index(
    identity: Identity,
) -> None:
    account = await identity.register()
    _, support = await identity.staff(StaffRole.SUPPORT)
    for email in (account["email"].upper(), "Someone.Else@Example.nl", "someone.else@example.nl"):
        response = await identity.client.get(
            "/v1/staff/accounts", params={"email": email}, headers=support | REASON_HEADER
        )
        assert response.status_code == 200
    assert response.json() == {"data": [], "next_cursor": None}
    _, admin = await identity.staff(StaffRole.ADMIN)
    newest_first = await identity.client.get("/v1/staff/access-log", headers=admin)
    log = newest_first.json()["data"][::-1]
    assert [(e["action"], e["account_id"], e["fields"] != []) for e in log] == [
        ("account.search", account["account_id"], True),
        ("account.search", None, False),
        ("account.search", None, False),
    ]
    # No address is stored in the log; the same address in another case is the same index.
    assert all(e["query"].startswith("email_index=") for e in log)
    assert not any("@" in e["query"] for e in log)
    assert log[1]["query"] == log[2]["query"] != log[0]["query"]


async def test_search_without_a_match_is_an_empty_page_and_still_audited(
    identity: Identity,
) -> None:
    _, support = await identity.staff(StaffRole.SUPPORT)
    response = await identity.client.get(
        "/v1/staff/accounts",
        params={"debtor_number": "999999"},
        headers=support | REASON_HEADER,
    )
    assert response.status_code == 200
    assert response.json() == {"data": [], "next_cursor": None}
    _, officer = await identity.staff(StaffRole.PRIVACY_OFFICER)
    log = (await identity.client.get("/v1/staff/access-log", headers=officer)).json()["data"]
    assert [(e["action"], e["account_id"], e["query"]) for e in log] == [
        ("account.search", None, "debtor_number=999999")
    ]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"cursor": "bm90LWpzb24"}, "cursor"),
        ({"cursor": "eyJpZCI6ICJub3BlIn0"}, "cursor"),  # {"id": "nope"}
        ({"limit": "201"}, "limit"),
        ({"limit": "0"}, "limit"),
    ],
)
async def test_search_bad_paging_is_422_naming_the_field(
    identity: Identity, params: dict[str, str], field: str
) -> None:
    account = await identity.register()
    _, support = await identity.staff(StaffRole.SUPPORT)
    response = await identity.client.get(
        "/v1/staff/accounts",
        params={"email": account["email"], **params},
        headers=support | REASON_HEADER,
    )
    assert response.status_code == 422, response.text
    assert [e["field"] for e in response.json()["errors"]] == [field]


async def test_account_holders_cannot_use_staff_routes(identity: Identity) -> None:
    account, headers = await identity.user()
    response = await identity.client.get(
        f"/v1/staff/accounts/{account['account_id']}", headers=headers | REASON_HEADER
    )
    assert response.status_code == 403
    # Refused before the missing reason is pointed out (decision 0605).
    for path in (f"/v1/staff/accounts/{account['account_id']}", "/v1/staff/accounts"):
        assert (await identity.client.get(path, headers=headers)).status_code == 403
        assert (await identity.client.get(path)).status_code == 401


async def test_only_admins_list_and_disable_staff(identity: Identity) -> None:
    support_id, support = await identity.staff(StaffRole.SUPPORT)
    _, officer = await identity.staff(StaffRole.PRIVACY_OFFICER)
    _, admin = await identity.staff(StaffRole.ADMIN)
    assert (await identity.client.get("/v1/staff/users", headers=support)).status_code == 403
    assert (await identity.client.get("/v1/staff/users", headers=officer)).status_code == 403
    listed = await identity.client.get("/v1/staff/users", headers=admin)
    assert listed.status_code == 200
    assert {"support", "privacy_officer", "admin"} <= {s["role"] for s in listed.json()["data"]}
    assert "password" not in listed.text

    forbidden = await identity.client.post(f"/v1/staff/users/{support_id}/disable", headers=officer)
    assert forbidden.status_code == 403
    disabled = await identity.client.post(f"/v1/staff/users/{support_id}/disable", headers=admin)
    assert disabled.status_code == 200
    assert disabled.json()["is_active"] is False
    # The disabled member's token no longer opens staff routes, and they cannot log in.
    assert (await identity.client.get("/v1/staff/me", headers=support)).status_code == 403


async def test_disabled_staff_cannot_log_in(identity: Identity) -> None:
    support_id, _ = await identity.staff(StaffRole.SUPPORT)
    _, admin = await identity.staff(StaffRole.ADMIN)
    await identity.client.post(f"/v1/staff/users/{support_id}/disable", headers=admin)
    async with identity.database.session() as session:
        email = await session.scalar(select(StaffUser.email).where(StaffUser.id == support_id))
    assert email is not None
    response = await identity.token_response(
        grant_type="password", username=email, password=PASSWORD
    )
    assert response.status_code == 400


async def test_admin_cannot_disable_themselves(identity: Identity) -> None:
    admin_id, admin = await identity.staff(StaffRole.ADMIN)
    response = await identity.client.post(f"/v1/staff/users/{admin_id}/disable", headers=admin)
    assert response.status_code == 409


async def test_scope_staff_picks_the_staff_login_when_an_account_has_the_same_email(
    identity: Identity,
) -> None:
    await identity.register(email="both@parcelpro.nl")
    async with identity.database.session() as session:
        await create_staff(
            session,
            identity.app.state.identity_runtime.passwords,
            email="both@parcelpro.nl",
            role=StaffRole.SUPPORT,
            password="another-good-password-9",
            name=None,
            now=identity.clock.now(),
        )
        await session.commit()
    as_account = await identity.login("both@parcelpro.nl", PASSWORD)
    as_staff = await identity.login("both@parcelpro.nl", "another-good-password-9", scope="staff")
    kinds = [
        jwt.decode(t["access_token"], options={"verify_signature": False})["kind"]
        for t in (as_account, as_staff)
    ]
    assert kinds == ["user", "staff"]


def test_create_staff_command_reads_the_password_from_stdin(
    identity_settings: IdentitySettings,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    email = f"cli-{uuid.uuid4().hex[:8]}@parcelpro.nl"
    monkeypatch.setenv("IDENTITY_DATABASE_URL", identity_settings.database_url)
    monkeypatch.setenv("IDENTITY_PASSWORD_MEMORY_COST_KIB", "1024")
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    try:
        assert main(["create-staff", "--email", email, "--role", "privacy_officer"]) == 0
        created: dict[str, Any] = orjson.loads(capsys.readouterr().out.strip().splitlines()[-1])
        assert created["email"] == email
        assert created["role"] == "privacy_officer"
        assert (
            main(["create-staff", "--email", email, "--role", "admin", "--password", PASSWORD]) == 1
        )
        assert "already exists" in capsys.readouterr().err
        assert (
            main(["create-staff", "--email", "x" + email, "--role", "admin", "--password", "short"])
            == 1
        )
    finally:
        _cleanup(identity_settings, email)


def _cleanup(settings: IdentitySettings, email: str) -> None:
    async def remove() -> None:
        database = database_for(settings)
        try:
            async with database.sessionmaker() as session:
                await session.execute(delete(StaffUser).where(StaffUser.email == email))
                await session.commit()
        finally:
            await database.dispose()

    asyncio.run(remove())
