"""Registration: the privacy statement's fields, validated, the debtor number assigned."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from services.identity_api.models import Account
from tests.support.identity_app import Identity, account_body

ACCOUNT_FIELDS = {
    "account_id", "debtor_number", "email", "email_verified", "name", "contact_person",
    "country", "postcode", "house_number", "street", "city", "kvk_number", "iban",
    "account_holder", "phone", "website", "vat_number", "created_at", "updated_at",
}  # fmt: skip


async def test_register_returns_the_account_normalised_and_without_password(
    identity: Identity,
) -> None:
    body = account_body(email="Jan@Example.NL", postcode="3191ee", phone="06 12345678")
    response = await identity.client.post("/v1/auth/register", json=body)
    assert response.status_code == 201
    account = response.json()
    assert set(account) == ACCOUNT_FIELDS
    assert account["email"] == "Jan@example.nl"
    assert account["postcode"] == "3191 EE"
    assert account["phone"] == "+31612345678"
    assert account["iban"] == "NL91ABNA0417164300"
    assert account["email_verified"] is False
    assert body["password"] not in response.text
    assert response.headers["location"] == "/v1/accounts/me"


async def test_debtor_numbers_are_assigned_in_sequence(identity: Identity) -> None:
    first = await identity.register()
    second = await identity.register()
    assert first["debtor_number"].isdigit()
    assert int(second["debtor_number"]) == int(first["debtor_number"]) + 1


async def test_duplicate_email_is_409_whatever_its_case(identity: Identity) -> None:
    await identity.register(email="dup@example.nl")
    response = await identity.client.post(
        "/v1/auth/register", json=account_body(email="DUP@example.NL")
    )
    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"
    assert [(e["field"], e["location"], e["type"]) for e in response.json()["errors"]] == [
        ("email", "body", "taken")
    ]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("iban", "NL91ABNA0417164301"),
        ("vat_number", "NL123456789B01"),
        ("postcode", "12345"),
        ("phone", "+31 6 1234"),
        ("kvk_number", "1234"),
        ("email", "not-an-address"),
        ("country", "XX"),
        ("website", "www.example.nl"),
        ("house_number", "abc"),
        ("password", "short"),
    ],
)
async def test_bad_value_is_422_naming_the_field(
    identity: Identity, field: str, value: str
) -> None:
    response = await identity.client.post("/v1/auth/register", json=account_body(**{field: value}))
    assert response.status_code == 422
    problem = response.json()
    assert [error["field"] for error in problem["errors"]] == [field]


async def test_common_password_is_refused_naming_the_field(identity: Identity) -> None:
    response = await identity.client.post(
        "/v1/auth/register", json=account_body(password="Password1234!")
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "password"
    assert "common" in response.json()["errors"][0]["message"]


async def test_foreign_postcode_is_kept_when_country_is_not_nl(identity: Identity) -> None:
    account = await identity.register(country="BE", postcode="1000", phone="+32470123456")
    assert account["postcode"] == "1000"


@pytest.mark.parametrize("field", ["debtor_number", "account_id", "role", "email_verified"])
async def test_server_owned_fields_are_refused(identity: Identity, field: str) -> None:
    response = await identity.client.post(
        "/v1/auth/register", json=account_body(**{field: "100001"})
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == field


async def test_iban_is_stored_encrypted_with_its_key_id(identity: Identity) -> None:
    account = await identity.register(iban="NL91 ABNA 0417 1643 00")
    async with identity.database.session() as session:
        stored = await session.scalar(
            select(Account.iban_encrypted).where(Account.email == account["email"])
        )
    assert stored is not None
    assert stored.startswith("aesgcm:dev-only:")
    assert "NL91" not in stored
    assert "0417164300" not in stored


async def test_password_is_stored_as_argon2id(identity: Identity) -> None:
    account = await identity.register()
    async with identity.database.session() as session:
        stored = await session.scalar(
            select(Account.password_hash).where(Account.email == account["email"])
        )
    assert stored is not None
    assert stored.startswith("$argon2id$")
