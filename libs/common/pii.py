"""Declarations of personal data on database columns, and the tooling they drive.

Every column that holds personal data carries ``info=pii(category, ...)``. Export, erasure,
restriction and retention read these declarations instead of hand-written column lists, so a new
column cannot silently escape a privacy request, and the Art. 30 register can be checked against
the schema.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import Enum, StrEnum
from typing import Any
from uuid import UUID

import orjson
from sqlalchemy import Column, MetaData, Table
from sqlalchemy.sql.elements import ColumnElement


class PiiCategory(StrEnum):
    """Categories of personal data, as the Art. 30 register names them."""

    ACCOUNT_IDENTIFIER = "account_identifier"  # account id, debtor number
    CREDENTIALS = "credentials"  # password hash, token and key hashes
    CONTACT = "contact"  # name, contact person, e-mail, phone, website
    ADDRESS = "address"  # postcode, house number, street, city, country
    BUSINESS_IDENTIFIERS = "business_identifiers"  # KvK number, VAT number
    FINANCIAL = "financial"  # IBAN, account holder
    NETWORK = "network"  # IP address
    USAGE = "usage"  # pages visited, times, user agent
    SECURITY_EVENTS = "security_events"  # logins, password changes, key events
    RECIPIENT_CONTACT = "recipient_contact"  # recipient name, contact person, e-mail, phone
    RECIPIENT_ADDRESS = "recipient_address"  # recipient postcode, number, street, city, country
    SHIPMENT_DETAILS = "shipment_details"  # references, contents a subject can be linked to
    SUPPORT_CONTACT = "support_contact"  # notes of calls, e-mails and chats with support
    CONSENT = "consent"  # consent decisions and their history
    PRIVACY_REQUEST = "privacy_request"  # data-subject requests and their correspondence
    DISCLOSURE = "disclosure"  # disclosures to authorities
    INCIDENT = "incident"  # breach register entries naming people
    STAFF = "staff"  # staff members' identity and actions (audit logs)


class Erasure(StrEnum):
    """What an erasure request does to a column."""

    NULLIFY = "nullify"  # set to NULL (or to the redaction marker when NOT NULL)
    REDACT = "redact"  # replace with the redaction marker
    RETAIN = "retain"  # keep: a legal obligation outlives the request (reason required)


class TableErasure(StrEnum):
    """What an erasure request does to a table's rows of the subject."""

    UPDATE = "update"  # keep the row, erase its personal columns (see Erasure)
    DELETE = "delete"  # delete the rows: nothing in them outlives the request


REDACTED = "[erased]"


def table_info(erasure: TableErasure) -> dict[str, Any]:
    """The ``info=`` of a table (``__table_args__``) whose rows an erasure deletes or keeps."""
    return {"erasure": erasure}


def table_erasure(table: Table) -> TableErasure:
    return TableErasure(table.info.get("erasure", TableErasure.UPDATE))


@dataclass(frozen=True, slots=True)
class PiiSpec:
    category: PiiCategory
    erasure: Erasure = Erasure.NULLIFY
    retain_reason: str | None = None
    """Why the value outlives an erasure request, e.g. the fiscal retention obligation."""
    retain_years: int | None = None
    exportable: bool = True
    """False for secrets (hashes): an export says the value exists, never what it is."""


def pii(
    category: PiiCategory,
    *,
    erasure: Erasure = Erasure.NULLIFY,
    retain_reason: str | None = None,
    retain_years: int | None = None,
    exportable: bool = True,
) -> dict[str, Any]:
    """The ``info=`` of a column holding personal data."""
    if erasure is Erasure.RETAIN and not retain_reason:
        raise ValueError("a retained column needs the legal reason it is retained")
    return {
        "pii": PiiSpec(
            category=category,
            erasure=erasure,
            retain_reason=retain_reason,
            retain_years=retain_years,
            exportable=exportable,
        )
    }


def pii_spec(column: ColumnElement[Any] | Column[Any]) -> PiiSpec | None:
    info = getattr(column, "info", None) or {}
    spec = info.get("pii")
    return spec if isinstance(spec, PiiSpec) else None


def pii_columns(table: Table) -> list[tuple[Column[Any], PiiSpec]]:
    return [(col, spec) for col in table.columns if (spec := pii_spec(col)) is not None]


def personal_data_tables(metadata: MetaData) -> list[Table]:
    return [table for table in metadata.sorted_tables if pii_columns(table)]


def iter_pii_columns(metadata: MetaData) -> Iterator[tuple[Table, Column[Any], PiiSpec]]:
    for table in metadata.sorted_tables:
        for column, spec in pii_columns(table):
            yield table, column, spec


def erasure_values(table: Table) -> dict[str, Any]:
    """Column values that erase a row's personal data (for one set-based UPDATE).

    Empty for tables whose rows are deleted instead (``TableErasure.DELETE``).
    """
    values: dict[str, Any] = {}
    if table_erasure(table) is TableErasure.DELETE:
        return values
    for column, spec in pii_columns(table):
        if spec.erasure is Erasure.RETAIN or column.primary_key:
            continue
        if spec.erasure is Erasure.NULLIFY and column.nullable:
            values[column.key] = None
        else:
            values[column.key] = _redaction_for(column)
    return values


def _redaction_for(column: Column[Any]) -> Any:
    python_type: type[Any] | None
    try:
        python_type = column.type.python_type
    except NotImplementedError:
        python_type = None
    if python_type is str or python_type is None:
        length = getattr(column.type, "length", None)
        return REDACTED[:length] if length else REDACTED
    raise TypeError(
        f"{column.table.name}.{column.key}: cannot redact a NOT NULL {python_type.__name__}; "
        "make it nullable or mark it RETAIN"
    )


@dataclass(frozen=True, slots=True)
class RetainedField:
    table: str
    column: str
    category: str
    reason: str
    retain_years: int | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "field": self.column,
            "category": self.category,
            "reason": self.reason,
            "retain_years": self.retain_years,
        }


def retained_fields(table: Table) -> list[RetainedField]:
    """Columns an erasure keeps, with the reason: what the subject is told was kept."""
    return [
        RetainedField(
            table=table.name,
            column=column.key,
            category=spec.category.value,
            reason=spec.retain_reason or "",
            retain_years=spec.retain_years,
        )
        for column, spec in pii_columns(table)
        if spec.erasure is Erasure.RETAIN
    ]


def jsonable(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, UUID | Decimal):
        return str(value)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, bytes):
        return None
    return value


WITHHELD = "[stored, not disclosed]"


def export_row(
    table: Table,
    row: Any,
    *,
    exclude: Iterable[str] = (),
    categories: frozenset[str] | None = None,
) -> dict[str, Any]:
    """A row as a subject sees it in an access export: every column, secrets withheld; with
    ``categories``, only what an export limited to them holds (see :func:`in_scope`)."""
    excluded = set(exclude)
    mapping = row._mapping if hasattr(row, "_mapping") else None
    out: dict[str, Any] = {}
    for column, withheld in _export_columns(table, categories):
        if column.key in excluded:
            continue
        value = mapping[column] if mapping is not None else getattr(row, column.key)
        if withheld:
            out[column.key] = WITHHELD if value is not None else None
        else:
            out[column.key] = jsonable(value)
    return out


def in_scope(table: Table, categories: frozenset[str] | None) -> bool:
    """Whether an export limited to ``categories`` (``None``: not limited) holds rows of the
    table: only when one of its personal-data columns is of those categories."""
    return bool(_export_columns(table, categories))


def exported_keys(table: Table, categories: frozenset[str] | None) -> frozenset[str]:
    """The keys of the columns an export limited to ``categories`` holds of the table."""
    return frozenset(str(column.key) for column, _ in _export_columns(table, categories))


@functools.cache
def _export_columns(
    table: Table, categories: frozenset[str] | None = None
) -> tuple[tuple[Column[Any], bool], ...]:
    """Each column an export holds, and whether its value is withheld (asked once per table).

    Limited to ``categories`` (a disclosure to an authority, decision 0308): the columns of
    those categories and the unannotated ones, which hold no personal data but say what a row
    is (ids, statuses, times); nothing when no column of the table is of those categories.
    """
    columns = tuple(
        (column, spec is not None and not spec.exportable)
        for column in table.columns
        if (spec := pii_spec(column)) is None or categories is None or spec.category in categories
    )
    if categories is not None and all(pii_spec(column) is None for column, _ in columns):
        return ()
    return columns


@functools.cache
def _line_plan(
    table: Table, categories: frozenset[str] | None = None
) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """Column keys in select order, the keys of withheld columns, the row's field names, and
    the keys of the columns an export limited to ``categories`` leaves out.
    Keys as plain ``str``: orjson takes no subclass (``quoted_name``) as a key."""
    every = _export_columns(table)
    held = _export_columns(table, categories)
    kept = {column.key for column, _ in held}
    return (
        tuple(str(column.key) for column, _ in every),
        tuple(str(column.key) for column, withheld in held if withheld),
        tuple(column.name for column, _ in every),
        tuple(str(column.key) for column, _ in every if column.key not in kept),
    )


def _orjson_default(value: Any) -> Any:
    """What ``jsonable`` does, for the values orjson does not write natively (driver UUIDs are
    subclasses it does not take)."""
    if isinstance(value, bytes):
        return None
    if isinstance(value, UUID | Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    raise TypeError(f"{type(value).__name__} is not exportable")


def exported_categories(table: Table, categories: frozenset[str] | None = None) -> list[str]:
    """The PII categories of the columns an export limited to ``categories`` holds of the table
    (secrets included: the export says they are stored), sorted."""
    return sorted(
        {
            spec.category.value
            for column, _ in _export_columns(table, categories)
            if (spec := pii_spec(column)) is not None
        }
    )


@functools.cache
def export_meta(table: Table, categories: frozenset[str] | None = None) -> bytes:
    """The line that precedes a table's records in an export: ``{"table", "pii_categories"}``
    (no ``record``), the PII categories of what the export holds of the table. Only the service
    knows its columns' categories (decisions 0004, 0308); privacy names, for these, the
    purposes, legal bases and recipients of the register in the export's summary (0302)."""
    meta = {"table": table.name, "pii_categories": exported_categories(table, categories)}
    return orjson.dumps(meta) + b"\n"


def export_lines(
    category: str,
    table: Table,
    rows: Sequence[Any],
    *,
    categories: frozenset[str] | None = None,
) -> bytes:
    """Rows of one ``select(table)`` result as export NDJSON: the table's :func:`export_meta`
    line, then lines ``{"category", "table", "record"}``, the bytes ``orjson.dumps`` makes of
    ``export_row``'s records, written without converting value by value (orjson writes
    datetimes, UUIDs and enums as ``jsonable`` does), which had been most of a service's CPU
    time in an export of 100,000 rows. With ``categories``, only what an export limited to them
    holds."""
    if not rows or not in_scope(table, categories):
        return b""
    keys, withheld, names, dropped = _line_plan(table, categories)
    head = orjson.dumps({"category": category, "table": table.name})[:-1] + b',"record":'
    # The rows of one result share their fields: asked once, not per row.
    is_plain = getattr(rows[0], "_fields", None) == names
    out = bytearray(export_meta(table, categories))
    for row in rows:
        if is_plain:
            record = dict(zip(keys, row, strict=True))
            for key in dropped:
                del record[key]
            for key in withheld:
                if record[key] is not None:
                    record[key] = WITHHELD
        else:
            record = {
                str(key): value
                for key, value in export_row(table, row, categories=categories).items()
            }
        out += head
        out += orjson.dumps(record, default=_orjson_default)
        out += b"}\n"
    return bytes(out)
