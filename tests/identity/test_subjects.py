"""The internal data-subject API (decision 0004), driven by the PII annotations."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from sqlalchemy import func, select

from libs.common.pii import Erasure, pii_columns, pii_spec
from services.identity_api.models import (
    Account,
    Base,
    RequestLog,
    SecurityEvent,
    StaffAccessLog,
    StaffRole,
)
from services.identity_api.staff.service import create_staff
from services.identity_api.subjects.repository import EMPLOYEE_TABLES, SUBJECT_TABLES
from tests.support.identity_app import PASSWORD, Identity, bearer, link_token
from tests.support.smtp import Inbox

FISCAL = {"debtor_number", "name", "postcode", "house_number", "street", "city", "country",
          "kvk_number", "vat_number", "id"}  # fmt: skip


async def service_headers(identity: Identity) -> dict[str, str]:
    return bearer(await identity.service_token("privacy_api"))


async def add_request_log(identity: Identity, account_id: str, count: int = 2) -> None:
    async with identity.database.session() as session:
        for i in range(count):
            session.add(
                RequestLog(
                    ip="198.51.100.23",
                    timestamp=identity.clock.now(),
                    duration_ms=1.0,
                    method="GET",
                    host="api.parcelpro.nl",
                    port=443,
                    path=f"/v1/accounts/me/{i}",
                    status=200,
                    request_size=0,
                    response_size=10,
                    request_id=uuid.uuid4().hex,
                    service="identity",
                    account_id=uuid.UUID(account_id),
                )
            )
        await session.commit()


async def populated(identity: Identity) -> tuple[dict[str, Any], dict[str, str], dict[str, Any]]:
    account, headers = await identity.user()
    key = await identity.api_key(headers, name="Shopify")
    await add_request_log(identity, account["account_id"])
    return account, headers, key


def lines(body: bytes) -> list[dict[str, Any]]:
    """The exported records (a table's description line carries no ``record``)."""
    parsed = [orjson.loads(line) for line in body.splitlines() if line]
    return [line for line in parsed if "record" in line]


def test_every_table_with_personal_data_is_covered_by_the_subject_api() -> None:
    covered = {entry.table.name for entry in SUBJECT_TABLES} | EMPLOYEE_TABLES
    annotated = {table.name for table in Base.metadata.sorted_tables if pii_columns(table)}
    assert annotated <= covered


def test_fiscal_fields_are_retained_for_seven_years_with_a_reason() -> None:
    retained = {
        column.key
        for column in Account.__table__.columns
        if (spec := pii_spec(column)) is not None and spec.erasure is Erasure.RETAIN
    }
    assert retained == FISCAL
    for column in Account.__table__.columns:
        spec = pii_spec(column)
        if column.key in FISCAL:
            assert spec is not None
            assert spec.retain_years == 7
            assert spec.retain_reason


async def test_export_streams_the_subjects_records_as_ndjson(identity: Identity) -> None:
    account, _, key = await populated(identity)
    response = await identity.client.post(
        "/internal/v1/subjects/export",
        json={"subject": {"account_id": account["account_id"]}, "request_id": "pr-1"},
        headers=await service_headers(identity),
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/x-ndjson")
    records = lines(response.content)
    by_table: dict[str, list[dict[str, Any]]] = {}
    for line in records:
        by_table.setdefault(line["table"], []).append(line)
    [acc] = by_table["accounts"]
    assert acc["category"] == "account"
    assert acc["record"]["iban"] == "NL91ABNA0417164300"
    assert acc["record"]["password_hash"] == "[stored, not disclosed]"
    assert acc["record"]["debtor_number"] == account["debtor_number"]
    assert "iban_encrypted" not in acc["record"]
    [api_key] = by_table["api_keys"]
    assert api_key["record"]["name"] == "Shopify"
    assert api_key["record"]["secret_hash"] == "[stored, not disclosed]"
    assert key["key"] not in response.text
    assert len(by_table["request_log"]) == 2
    assert by_table["request_log"][0]["record"]["ip"] == "198.51.100.23"
    event_types = {line["record"]["type"] for line in by_table["security_events"]}
    assert {"registered", "login_succeeded", "api_key_created"} <= event_types
    assert all(
        line["record"]["token_hash"] == "[stored, not disclosed]"
        for line in by_table["refresh_tokens"]
    )
    assert "$argon2" not in response.text


async def confirm_email(identity: Identity, inbox: Inbox, email: str) -> None:
    """Follow the confirmation link mailed at registration."""
    await identity.deliver_mail()
    token = link_token(Inbox.body((await inbox.wait_for(email))[-1]))
    response = await identity.client.post("/v1/auth/verify-email", json={"token": token})
    assert response.status_code == 204


async def test_export_finds_the_subject_by_a_confirmed_email(
    identity: Identity, inbox: Inbox
) -> None:
    account = await identity.register()
    await confirm_email(identity, inbox, account["email"])
    response = await identity.client.post(
        "/internal/v1/subjects/export",
        json={"subject": {"email": account["email"].upper()}, "request_id": "pr-2"},
        headers=await service_headers(identity),
    )
    assert any(line["table"] == "accounts" for line in lines(response.content))


async def test_an_unconfirmed_email_finds_no_account(identity: Identity) -> None:
    # Whoever registered may have typed someone else's address: proving that mailbox must not
    # hand over their account (IBAN included), nor let its owner erase or change it.
    account = await identity.register()
    service = await service_headers(identity)
    subject = {"email": account["email"]}
    export = await identity.client.post(
        "/internal/v1/subjects/export",
        json={"subject": subject, "request_id": "pr-unconfirmed-1"},
        headers=service,
    )
    assert export.status_code == 200
    assert export.content == b""
    erase = await identity.client.post(
        "/internal/v1/subjects/erase",
        json={"subject": subject, "request_id": "pr-unconfirmed-2"},
        headers=service,
    )
    assert erase.json() == {"service": "identity", "erased": {}, "kept": []}
    rectify = await identity.client.post(
        "/internal/v1/subjects/rectify",
        json={"subject": subject, "request_id": "pr-unconfirmed-3",
              "changes": {"iban": "NL20INGB0001234567"}},
        headers=service,
    )  # fmt: skip
    assert rectify.json()["rectified"] == {}
    tokens = await identity.login(account["email"])
    me = await identity.client.get("/v1/accounts/me", headers=bearer(tokens["access_token"]))
    assert me.json()["iban"] == "NL91ABNA0417164300"


async def test_an_accounts_phone_number_never_finds_it(identity: Identity, inbox: Inbox) -> None:
    # Nobody confirms the phone number of an account: its holder types whatever they like.
    account = await identity.register()
    await confirm_email(identity, inbox, account["email"])
    service = await service_headers(identity)
    subject = {"phone": account["phone"]}
    export = await identity.client.post(
        "/internal/v1/subjects/export",
        json={"subject": subject, "request_id": "pr-phone-1"},
        headers=service,
    )
    assert export.status_code == 200
    assert export.content == b""
    erase = await identity.client.post(
        "/internal/v1/subjects/erase",
        json={"subject": subject, "request_id": "pr-phone-2"},
        headers=service,
    )
    assert erase.json()["erased"] == {}
    rectify = await identity.client.post(
        "/internal/v1/subjects/rectify",
        json={"subject": subject, "request_id": "pr-phone-3",
              "changes": {"email": "someone.else@example.nl"}},
        headers=service,
    )  # fmt: skip
    assert rectify.json()["rectified"] == {}
    tokens = await identity.login(account["email"])
    me = await identity.client.get("/v1/accounts/me", headers=bearer(tokens["access_token"]))
    assert me.json()["email"] == account["email"]


async def test_export_of_an_unknown_subject_is_empty(identity: Identity) -> None:
    response = await identity.client.post(
        "/internal/v1/subjects/export",
        json={"subject": {"email": "nobody@example.nl"}, "request_id": "pr-3"},
        headers=await service_headers(identity),
    )
    assert response.status_code == 200
    assert response.content == b""


async def test_subject_routes_need_a_service_token_with_subjects_scope(
    identity: Identity,
) -> None:
    body = {"subject": {"email": "a@example.nl"}, "request_id": "pr-4"}
    for route in ("export", "erase"):
        anonymous = await identity.client.post(f"/internal/v1/subjects/{route}", json=body)
        assert anonymous.status_code == 401
        shipping = bearer(await identity.service_token("shipping_api"))
        wrong_scope = await identity.client.post(
            f"/internal/v1/subjects/{route}", json=body, headers=shipping
        )
        assert wrong_scope.status_code == 403


async def test_subject_needs_at_least_one_identifier(identity: Identity) -> None:
    response = await identity.client.post(
        "/internal/v1/subjects/erase",
        json={"subject": {}, "request_id": "pr-5"},
        headers=await service_headers(identity),
    )
    assert response.status_code == 422


async def test_erase_anonymises_keeps_the_fiscal_record_and_revokes_everything(
    identity: Identity,
) -> None:
    account, headers, key = await populated(identity)
    tokens = await identity.login(account["email"])
    service = await service_headers(identity)
    body = {"subject": {"account_id": account["account_id"]}, "request_id": "pr-erase-1"}
    response = await identity.client.post("/internal/v1/subjects/erase", json=body, headers=service)
    assert response.status_code == 200
    result = response.json()
    assert result["service"] == "identity"
    assert result["erased"]["accounts"] == 1
    assert result["erased"]["request_log"] == 2
    assert result["erased"]["api_keys"] == 1
    assert result["erased"]["refresh_tokens"] == 2
    assert result["erased"]["security_events"] >= 3
    kept = {(k["table"], k["field"]) for k in result["kept"]}
    assert {("accounts", field) for field in FISCAL} <= kept
    assert all(k["reason"] and k["retain_years"] == 7 for k in result["kept"])

    async with identity.database.session() as session:
        row = await session.get(Account, uuid.UUID(account["account_id"]))
        assert row is not None
        assert row.email is None
        assert row.password_hash is None
        assert row.iban_encrypted is None
        assert row.phone is None
        assert row.contact_person is None
        assert row.name == account["name"]
        assert row.debtor_number == account["debtor_number"]
        assert row.erased_at is not None
        # Seven years after the end of the financial year of the erasure (AWR art. 52(4)).
        now = identity.clock.now()
        assert row.retain_until is not None
        assert row.retain_until == datetime(now.year + 8, 1, 1, tzinfo=UTC)
        logs = await session.scalar(
            select(func.count()).select_from(RequestLog).where(RequestLog.account_id == row.id)
        )
        events = await session.scalar(
            select(func.count())
            .select_from(SecurityEvent)
            .where(SecurityEvent.account_id == row.id)
        )
    assert logs == 0
    assert events == 0

    # The API key, the login and the password are all gone.
    introspected = await identity.client.post(
        "/internal/v1/api-keys/introspect",
        json={"token": key["key"]},
        headers=bearer(await identity.service_token("shipping_api")),
    )
    assert introspected.json() == {"active": False}
    refresh = await identity.token_response(
        grant_type="refresh_token", refresh_token=tokens["refresh_token"]
    )
    assert refresh.status_code == 400
    login = await identity.token_response(
        grant_type="password", username=account["email"], password=PASSWORD
    )
    assert login.status_code == 400
    assert (await identity.client.get("/v1/accounts/me", headers=headers)).status_code == 404
    sender = await identity.client.get(
        f"/internal/v1/accounts/{account['account_id']}",
        headers=bearer(await identity.service_token("shipping_api")),
    )
    assert sender.status_code == 404

    # The same request again: the same answer, nothing more changed.
    again = await identity.client.post("/internal/v1/subjects/erase", json=body, headers=service)
    assert again.json() == result
    # The e-mail address is free for a new registration.
    await identity.register(email=account["email"])


async def test_erase_keeps_the_staff_access_log_for_accountability(identity: Identity) -> None:
    account = await identity.register()
    async with identity.database.session() as session:
        await create_staff(
            session,
            identity.app.state.identity_runtime.passwords,
            email="support@parcelpro.nl",
            role=StaffRole.SUPPORT,
            password=PASSWORD,
            name=None,
            now=identity.clock.now(),
        )
        await session.commit()
    staff = bearer((await identity.login("support@parcelpro.nl", PASSWORD))["access_token"])
    await identity.client.get(
        f"/v1/staff/accounts/{account['account_id']}",
        headers=staff | {"X-Access-Reason": "ticket 12: address change"},
    )
    response = await identity.client.post(
        "/internal/v1/subjects/erase",
        json={"subject": {"account_id": account["account_id"]}, "request_id": "pr-erase-2"},
        headers=await service_headers(identity),
    )
    kept = {(k["table"], k["field"]) for k in response.json()["kept"]}
    assert ("staff_access_log", "account_id") in kept
    assert ("staff_access_log", "staff_id") in kept


async def support_login(identity: Identity) -> dict[str, str]:
    email = f"support-{uuid.uuid4().hex[:6]}@parcelpro.nl"
    async with identity.database.session() as session:
        await create_staff(
            session,
            identity.app.state.identity_runtime.passwords,
            email=email,
            role=StaffRole.SUPPORT,
            password=PASSWORD,
            name=None,
            now=identity.clock.now(),
        )
        await session.commit()
    return bearer((await identity.login(email, PASSWORD))["access_token"])


async def test_staff_searches_that_found_nobody_are_the_searched_addresses_data(
    identity: Identity,
) -> None:
    staff = await support_login(identity)
    for email, reason in (
        ("Jan.Jansen@Example.nl", "caller says a parcel for him went missing"),
        ("piet@example.nl", "ticket 9: who is this?"),
    ):
        response = await identity.client.get(
            "/v1/staff/accounts",
            params={"email": email},
            headers=staff | {"X-Access-Reason": reason},
        )
        assert response.json()["data"] == []
    service = await service_headers(identity)
    jan = {"email": "jan.jansen@example.nl"}
    export = await identity.client.post(
        "/internal/v1/subjects/export",
        json={"subject": jan, "request_id": "pr-s1"},
        headers=service,
    )
    [search] = lines(export.content)
    assert (search["category"], search["table"]) == ("staff_access", "staff_access_log")
    record = search["record"]
    assert record["action"] == "account.search"
    assert record["query"] == "email=jan.jansen@example.nl"
    assert record["account_id"] is None
    assert record["fields"] == []
    assert record["reason"] == "caller says a parcel for him went missing"
    assert "piet" not in export.text

    erase = await identity.client.post(
        "/internal/v1/subjects/erase", json={"subject": jan, "request_id": "pr-s2"}, headers=service
    )
    result = erase.json()
    assert result["erased"] == {"staff_access_log": 1}
    kept = {(k["table"], k["field"]) for k in result["kept"]}
    assert {("staff_access_log", "staff_id"), ("staff_access_log", "reason")} <= kept
    async with identity.database.session() as session:
        rows = (
            await session.execute(
                select(StaffAccessLog.query, StaffAccessLog.reason).order_by(StaffAccessLog.id)
            )
        ).all()
    # Who searched, when and why is kept for accountability; what was searched is gone.
    assert rows[0] == (None, "caller says a parcel for him went missing")
    assert rows[1].query is not None
    assert rows[1].query.startswith("email_index=")
    again = await identity.client.post(
        "/internal/v1/subjects/export",
        json={"subject": jan, "request_id": "pr-s3"},
        headers=service,
    )
    assert again.content == b""
    piet = await identity.client.post(
        "/internal/v1/subjects/export",
        json={"subject": {"email": "piet@example.nl"}, "request_id": "pr-s4"},
        headers=service,
    )
    assert [line["record"]["reason"] for line in lines(piet.content)] == ["ticket 9: who is this?"]


async def test_erase_of_an_unknown_subject_changes_nothing(identity: Identity) -> None:
    response = await identity.client.post(
        "/internal/v1/subjects/erase",
        json={"subject": {"email": "nobody@example.nl"}, "request_id": "pr-erase-3"},
        headers=await service_headers(identity),
    )
    assert response.json() == {"service": "identity", "erased": {}, "kept": []}


async def test_restriction_flags_the_account_and_is_lifted_per_basis(identity: Identity) -> None:
    account = await identity.register()
    service = await service_headers(identity)
    subject = {"account_id": account["account_id"]}

    async def call(request_id: str, restricted: bool, basis: str) -> dict[str, Any]:
        response = await identity.client.post(
            "/internal/v1/subjects/restrict",
            json={"subject": subject, "request_id": request_id, "restricted": restricted,
                  "basis": basis},
            headers=service,
        )  # fmt: skip
        assert response.status_code == 200
        result: dict[str, Any] = response.json()
        return result

    async def is_restricted() -> bool:
        response = await identity.client.get(
            f"/internal/v1/accounts/{account['account_id']}",
            headers=bearer(await identity.service_token("shipping_api")),
        )
        return bool(response.json()["is_restricted"])

    assert await call("r-1", True, "restriction") == {
        "service": "identity",
        "restricted": {"accounts": 1},
    }
    assert await is_restricted()
    await call("r-2", True, "objection")
    await call("r-3", False, "restriction")
    assert await is_restricted()  # the objection still stands
    await call("r-4", False, "objection")
    assert not await is_restricted()


async def test_rectify_applies_validated_changes(identity: Identity) -> None:
    account = await identity.register()
    service = await service_headers(identity)
    body = {
        "subject": {"account_id": account["account_id"]},
        "request_id": "pr-rect-1",
        "changes": {"street": "Coolsingel", "house_number": "40", "postcode": "3011ad"},
    }
    response = await identity.client.post(
        "/internal/v1/subjects/rectify", json=body, headers=service
    )
    assert response.status_code == 200
    assert response.json() == {
        "service": "identity",
        "rectified": {"accounts": 1},
        "fields": ["house_number", "postcode", "street"],
    }
    tokens = await identity.login(account["email"])
    me = (
        await identity.client.get("/v1/accounts/me", headers=bearer(tokens["access_token"]))
    ).json()
    assert (me["street"], me["house_number"], me["postcode"]) == ("Coolsingel", "40", "3011 AD")
    again = await identity.client.post("/internal/v1/subjects/rectify", json=body, headers=service)
    assert again.json() == response.json()


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"iban": "NL00BANK0000000000"}, "changes.iban"),
        ({"debtor_number": "1"}, "changes.debtor_number"),
        ({"postcode": "1000"}, "changes.postcode"),
    ],
)
async def test_rectify_with_a_bad_value_is_422_naming_the_field(
    identity: Identity, changes: dict[str, str], field: str
) -> None:
    account = await identity.register()
    response = await identity.client.post(
        "/internal/v1/subjects/rectify",
        json={"subject": {"account_id": account["account_id"]}, "request_id": "pr-rect-2",
              "changes": changes},
        headers=await service_headers(identity),
    )  # fmt: skip
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == field
