"""Field types normalise good values and reject bad ones with a message naming the problem."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ValidationError

from libs.common.validation import (
    Country,
    Email,
    HouseNumber,
    Iban,
    KvkNumber,
    Phone,
    VatNumber,
    Website,
    normalise_postcode,
)


class Form(BaseModel):
    email: Email | None = None
    phone: Phone | None = None
    country: Country | None = None
    iban: Iban | None = None
    vat_number: VatNumber | None = None
    kvk_number: KvkNumber | None = None
    website: Website | None = None
    house_number: HouseNumber | None = None


@pytest.mark.parametrize(
    ("field", "given", "stored"),
    [
        ("email", " Jan@Example.NL ", "Jan@example.nl"),
        ("phone", "06 12345678", "+31612345678"),
        ("phone", "+32 470 12 34 56", "+32470123456"),
        ("country", "nl", "NL"),
        ("iban", "nl91 abna 0417 1643 00", "NL91ABNA0417164300"),
        ("vat_number", "NL004495445B01", "NL004495445B01"),
        ("vat_number", "004495445B01", "NL004495445B01"),
        ("kvk_number", "1234 5678", "12345678"),
        ("website", "https://www.example.nl", "https://www.example.nl"),
        ("house_number", "12-A", "12-A"),
    ],
)
def test_good_values_are_normalised(field: str, given: str, stored: str) -> None:
    assert getattr(Form.model_validate({field: given}), field) == stored


@pytest.mark.parametrize(
    ("field", "given"),
    [
        ("email", "not-an-address"),
        ("phone", "12"),
        ("phone", "+31 6 1234"),
        ("country", "XX"),
        ("country", "NLD"),
        ("iban", "NL91ABNA0417164301"),
        ("vat_number", "NL123456789B01"),
        ("kvk_number", "1234567"),
        ("website", "ftp://example.nl"),
        ("house_number", "A12"),
    ],
)
def test_bad_values_name_the_field(field: str, given: str) -> None:
    with pytest.raises(ValidationError) as caught:
        Form.model_validate({field: given})
    assert caught.value.errors()[0]["loc"] == (field,)


def test_dutch_postcodes_are_checked_and_formatted() -> None:
    assert normalise_postcode("3191ee", "NL") == "3191 EE"
    assert normalise_postcode(" b-1000 ", "BE") == "B-1000"
    with pytest.raises(ValueError, match="Dutch postcode"):
        normalise_postcode("0123 AB", "NL")
