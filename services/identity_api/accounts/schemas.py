"""Account schemas: what an account holder sends and sees, what staff and services see."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from libs.common.validation import (
    City,
    Country,
    Email,
    HouseNumber,
    Iban,
    KvkNumber,
    PersonName,
    Phone,
    Postcode,
    Street,
    VatNumber,
    Website,
    normalise_postcode,
)
from services.identity_api.passwords.policy import MAX_LENGTH, MIN_LENGTH

PASSWORD_FIELD: Any = Field(
    min_length=MIN_LENGTH,
    max_length=MAX_LENGTH,
    description=f"{MIN_LENGTH} to {MAX_LENGTH} characters; commonly used passwords are refused.",
    examples=["kaas-fiets-regen-42"],
)
REQUIRED_FIELDS = ("name", "postcode", "house_number", "street", "city", "country")


def _postcode_for_country(value: str | None, info: ValidationInfo) -> str | None:
    country = info.data.get("country")
    if value is None or not isinstance(country, str):
        return value
    return normalise_postcode(value, country)


class _AccountFields(BaseModel):
    """Field descriptions shared by create and update. ``country`` precedes ``postcode``: a
    postcode is checked against the country (Dutch ones are written ``1234 AB``)."""

    name: PersonName = Field(description="Company or trade name (for invoices and labels).")
    contact_person: PersonName | None = Field(
        None, description="Who we speak to.", examples=["Jan Jansen"]
    )
    country: Country = Field("NL", description="ISO 3166-1 alpha-2 country code.")
    postcode: Postcode
    house_number: HouseNumber
    street: Street
    city: City
    kvk_number: KvkNumber | None = Field(
        None, description="Chamber of Commerce (KvK) number: 8 digits."
    )
    iban: Iban | None = Field(
        None, description="Account for the direct debit of shipping costs; stored encrypted."
    )
    account_holder: PersonName | None = Field(
        None, description="Name on the bank account.", examples=["Jansen Webwinkel B.V."]
    )
    phone: Phone | None = Field(None, description="Written E.164 (+31612345678).")
    website: Website | None = None
    vat_number: VatNumber | None = Field(None, description="Dutch VAT number (btw-id).")

    check_postcode = field_validator("postcode")(_postcode_for_country)


class AccountCreate(_AccountFields):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "email": "jan@jansenwebwinkel.nl",
                    "password": "kaas-fiets-regen-42",
                    "name": "Jansen Webwinkel B.V.",
                    "contact_person": "Jan Jansen",
                    "country": "NL",
                    "postcode": "3191 EE",
                    "house_number": "22",
                    "street": "Griede",
                    "city": "Hoogvliet Rotterdam",
                    "kvk_number": "12345678",
                    "iban": "NL91ABNA0417164300",
                    "account_holder": "Jansen Webwinkel B.V.",
                    "phone": "+31612345678",
                    "website": "https://www.jansenwebwinkel.nl",
                    "vat_number": "NL004495445B01",
                }
            ]
        },
    )

    email: Email = Field(description="Login name and where we send account mail.")
    password: str = PASSWORD_FIELD


class AccountUpdate(BaseModel):
    """Only the fields sent change; ``null`` clears an optional field. Server-owned fields
    (``account_id``, ``debtor_number``, ``role`` ...) are refused."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"phone": "+31612345678", "website": None}]},
    )

    email: Email | None = Field(
        None, description="A new address must be confirmed again (a link is mailed to it)."
    )
    name: PersonName | None = None
    contact_person: PersonName | None = None
    country: Country | None = None
    postcode: Postcode | None = None
    house_number: HouseNumber | None = None
    street: Street | None = None
    city: City | None = None
    kvk_number: KvkNumber | None = None
    iban: Iban | None = None
    account_holder: PersonName | None = None
    phone: Phone | None = None
    website: Website | None = None
    vat_number: VatNumber | None = None

    check_postcode = field_validator("postcode")(_postcode_for_country)


CURRENT_PASSWORD_FOR = ("email", "iban")


class OwnAccountUpdate(AccountUpdate):
    """An account holder's own change. A new ``email`` or ``iban`` also needs the current
    password: a stolen access token must not redirect account mail (and with it password
    resets) or payouts."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"phone": "+31612345678", "website": None},
                {"iban": "NL91ABNA0417164300", "current_password": "kaas-fiets-regen-42"},
            ]
        },
    )

    current_password: str | None = Field(
        None,
        min_length=1,
        max_length=MAX_LENGTH,
        description="Your current password; required when `email` or `iban` changes, "
        "ignored otherwise.",
    )


class AccountRead(BaseModel):
    """An account as its holder sees it (the IBAN in full)."""

    account_id: uuid.UUID
    debtor_number: str = Field(
        description="Assigned by Parcel Pro; quote it on payments.", examples=["100042"]
    )
    email: str | None
    email_verified: bool = Field(description="Whether the address was confirmed by mail.")
    name: str
    contact_person: str | None
    country: str
    postcode: str
    house_number: str
    street: str
    city: str
    kvk_number: str | None
    iban: str | None = Field(examples=["NL91ABNA0417164300"])
    account_holder: str | None
    phone: str | None
    website: str | None
    vat_number: str | None
    created_at: datetime
    updated_at: datetime


class AccountStaffRead(AccountRead):
    """An account as support staff see it: the IBAN masked."""

    iban: str | None = Field(
        description="Masked: country, check digits and last four.", examples=["NL91**********4300"]
    )
    is_restricted: bool = Field(description="Processing restricted or objected to (AVG 18/21).")
    erased: bool


class PasswordChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    current_password: str = Field(min_length=1, max_length=MAX_LENGTH)
    new_password: str = PASSWORD_FIELD


class SenderDetails(BaseModel):
    """An account's sender details for labels (internal, per decision 0004)."""

    account_id: uuid.UUID
    debtor_number: str
    name: str
    contact_person: str | None
    street: str
    house_number: str
    postcode: str
    city: str
    country: str
    email: str | None
    email_verified: bool = Field(
        description="Whether the holder confirmed `email`; privacy matches only a confirmed one."
    )
    phone: str | None
    is_restricted: bool


def mask_iban(iban: str | None) -> str | None:
    if not iban:
        return iban
    return iban[:4] + "*" * max(0, len(iban) - 8) + iban[-4:]
