"""Validated, normalised field types for personal and business data, built on well-kept
libraries (python-stdnum, schwifty, phonenumbers, email-validator, pycountry).

Use them as pydantic field types; a bad value becomes a 422 problem naming the field. Values come
out normalised (``1234 AB``, ``+31612345678``, ``NL004495445B01``), so stored data and blind
indexes are stable.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Any

import phonenumbers
import pycountry
from email_validator import EmailNotValidError, validate_email
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BeforeValidator,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    Strict,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import core_schema
from schwifty import IBAN
from schwifty.exceptions import SchwiftyException
from stdnum.exceptions import ValidationError as StdnumError
from stdnum.nl import btw, postcode

_KVK = re.compile(r"^\d{8}$")


NOT_BLANK = r"\S"
"""Documents (and checks) that text holds more than white space."""


def _trimmed(value: str) -> str:
    return value.strip()


def _not_blank(value: str) -> str:
    trimmed = value.strip()
    if not trimmed:
        raise ValueError("must not be blank")
    return trimmed


def normalise_email(value: str) -> str:
    try:
        result = validate_email(value, check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValueError(f"not a valid e-mail address: {exc}") from exc
    # The domain is case-insensitive; the local part is kept as given (RFC 5321).
    return result.normalized


def normalise_phone(value: str, default_region: str = "NL") -> str:
    """E.164; numbers without a country code are read as Dutch."""
    try:
        number = phonenumbers.parse(value, default_region)
    except phonenumbers.NumberParseException as exc:
        raise ValueError("not a phone number") from exc
    if not phonenumbers.is_valid_number(number):
        raise ValueError("not a valid phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalise_country(value: str) -> str:
    """ISO 3166-1 alpha-2, upper case."""
    code = value.strip().upper()
    if len(code) != 2 or pycountry.countries.get(alpha_2=code) is None:
        raise ValueError("not an ISO 3166-1 alpha-2 country code (e.g. NL, BE, DE)")
    return code


def normalise_dutch_postcode(value: str) -> str:
    try:
        return str(postcode.validate(value))
    except StdnumError as exc:
        raise ValueError("not a Dutch postcode (e.g. 1234 AB)") from exc


def normalise_postcode(value: str, country: str) -> str:
    """Dutch postcodes are checked and written ``1234 AB``; others are trimmed and upper-cased."""
    if country == "NL":
        return normalise_dutch_postcode(value)
    cleaned = " ".join(value.upper().split())
    if not cleaned or len(cleaned) > 12 or not re.fullmatch(r"[A-Z0-9 -]+", cleaned):
        raise ValueError("not a postcode")
    return cleaned


def normalise_iban(value: str) -> str:
    try:
        return str(IBAN(value).compact)
    except SchwiftyException as exc:
        raise ValueError("not a valid IBAN") from exc


def normalise_vat_number(value: str) -> str:
    """Dutch BTW-id (``NL`` + 9 digits + ``B`` + 2 digits), checked with its check digit."""
    try:
        return "NL" + str(btw.validate(value))
    except StdnumError as exc:
        raise ValueError("not a valid Dutch VAT number (e.g. NL004495445B01)") from exc


def normalise_kvk_number(value: str) -> str:
    cleaned = value.replace(" ", "").replace(".", "")
    if not _KVK.fullmatch(cleaned):
        raise ValueError("a KvK number has 8 digits")
    return cleaned


def normalise_website(value: str) -> str:
    if not re.fullmatch(r"https?://[^\s/$.?#][^\s]*", value, flags=re.IGNORECASE):
        raise ValueError("a website is an http:// or https:// address")
    return value


# Bounds and patterns apply to the text as sent, exactly as the OpenAPI document states them;
# surrounding white space is trimmed afterwards.
Email = Annotated[
    str,
    Field(max_length=254, examples=["jan.jansen@example.nl"]),
    AfterValidator(_trimmed),
    AfterValidator(normalise_email),
]
Phone = Annotated[
    str,
    Field(max_length=32, examples=["+31612345678"]),
    AfterValidator(_trimmed),
    AfterValidator(normalise_phone),
]
Country = Annotated[
    str,
    Field(min_length=2, max_length=2, examples=["NL"]),
    AfterValidator(normalise_country),
]
Iban = Annotated[
    str,
    Field(max_length=42, examples=["NL91ABNA0417164300"]),
    AfterValidator(_trimmed),
    AfterValidator(normalise_iban),
]
VatNumber = Annotated[
    str,
    Field(max_length=20, examples=["NL004495445B01"]),
    AfterValidator(_trimmed),
    AfterValidator(normalise_vat_number),
]
KvkNumber = Annotated[
    str,
    Field(max_length=12, examples=["12345678"]),
    AfterValidator(_trimmed),
    AfterValidator(normalise_kvk_number),
]
Website = Annotated[
    str,
    Field(max_length=255, examples=["https://www.example.nl"]),
    AfterValidator(_trimmed),
    AfterValidator(normalise_website),
]
Postcode = Annotated[
    str,
    Field(min_length=1, max_length=12, pattern=NOT_BLANK, examples=["1234 AB"]),
    AfterValidator(_not_blank),
]
"""Checked against the country by the model that has both (see :func:`normalise_postcode`)."""
HouseNumber = Annotated[
    str,
    Field(
        min_length=1,
        max_length=16,
        pattern=r"^[0-9]{1,6}[ -]?[A-Za-z0-9]{0,6}$",
        examples=["22", "12-A", "3 bis"],
    ),
]
PersonName = Annotated[
    str,
    Field(min_length=1, max_length=200, pattern=NOT_BLANK, examples=["Jan Jansen"]),
    AfterValidator(_not_blank),
]
Street = Annotated[
    str,
    Field(min_length=1, max_length=200, pattern=NOT_BLANK, examples=["Griede"]),
    AfterValidator(_not_blank),
]
City = Annotated[
    str,
    Field(min_length=1, max_length=100, pattern=NOT_BLANK, examples=["Rotterdam"]),
    AfterValidator(_not_blank),
]


def _not_a_number(example: str) -> BeforeValidator:
    """JSON has no date type: a number (or a string of digits) is refused instead of being read
    as Unix seconds, which is what the schema's ``format: date``/``date-time`` promises."""

    def check(value: object) -> object:
        if isinstance(value, int | float) or (
            isinstance(value, str) and re.fullmatch(r"\s*-?\d+(\.\d+)?\s*", value)
        ):
            raise ValueError(f"an RFC 3339 {example}")
        return value

    return BeforeValidator(check)


def _integral(value: object) -> object:
    # JSON Schema counts 2.0 as an integer; true and "2" are not.
    return int(value) if isinstance(value, float) and value.is_integer() else value


Timestamp = Annotated[datetime, _not_a_number("date-time, e.g. 2026-11-25T14:03:00Z")]
"""A date-time in a request: RFC 3339 only."""
AwareTimestamp = Annotated[AwareDatetime, _not_a_number("date-time, e.g. 2026-11-25T14:03:00Z")]
"""A date-time in a request, RFC 3339 with its time zone."""
Day = Annotated[date, _not_a_number("date, e.g. 2026-11-25")]
"""A calendar day in a request: RFC 3339 ``full-date`` only."""
Integer = Annotated[int, BeforeValidator(_integral), Strict()]
"""An integer in a JSON body: ``2`` or ``2.0``, never ``true`` or ``"2"``."""


class NotNull:
    """Marks a field of a partial update (``T | None = None``) that may be left out but not
    sent as ``null``, because the value cannot be cleared. Validation refuses ``null`` and the
    JSON schema documents the field without it."""

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_after_validator_function(_refuse_null, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        json_schema = handler(schema)
        variants = [v for v in json_schema.pop("anyOf", []) if v != {"type": "null"}]
        if len(variants) == 1:
            json_schema.update(variants[0])
        elif variants:
            json_schema["anyOf"] = variants
        return json_schema


def _refuse_null(value: object) -> object:
    if value is None:
        raise ValueError("may be left out, but not null")
    return value


UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def first_unstorable(value: Any, path: str) -> str | None:
    if isinstance(value, str):
        return path if UNSTORABLE.search(value) else None
    if isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            if UNSTORABLE.search(str(key)):
                return where
            found = first_unstorable(item, where)
            if found is not None:
                return found
    if isinstance(value, list):
        for index, item in enumerate(value):
            found = first_unstorable(item, f"{path}.{index}" if path else str(index))
            if found is not None:
                return found
    return None
