"""PII declarations drive erasure and export: nothing annotated can be forgotten."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, Uuid, select

from libs.common.pii import (
    REDACTED,
    Erasure,
    PiiCategory,
    erasure_values,
    export_row,
    iter_pii_columns,
    pii,
    retained_fields,
)
from services.identity_api.models import Base as IdentityBase
from services.privacy_api.models import Base as PrivacyBase
from services.shipping_api.models import Base as ShippingBase

metadata = MetaData()
customers = Table(
    "customers",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("name", String(200), nullable=False, info=pii(PiiCategory.CONTACT)),
    Column("email", String(254), nullable=True, info=pii(PiiCategory.CONTACT)),
    Column(
        "debtor_number",
        Integer,
        nullable=False,
        info=pii(
            PiiCategory.ACCOUNT_IDENTIFIER,
            erasure=Erasure.RETAIN,
            retain_reason="fiscal records (AWR art. 52)",
            retain_years=7,
        ),
    ),
    Column("password_hash", String(200), info=pii(PiiCategory.CREDENTIALS, exportable=False)),
    Column("plan", String(20)),
)


def test_erasure_nulls_or_redacts_and_keeps_only_what_the_law_keeps() -> None:
    assert erasure_values(customers) == {
        "name": REDACTED,
        "email": None,
        "password_hash": None,
    }
    [kept] = retained_fields(customers)
    assert kept.as_dict() == {
        "table": "customers",
        "field": "debtor_number",
        "category": "account_identifier",
        "reason": "fiscal records (AWR art. 52)",
        "retain_years": 7,
    }


def test_retaining_needs_a_reason() -> None:
    with pytest.raises(ValueError, match="legal reason"):
        pii(PiiCategory.CONTACT, erasure=Erasure.RETAIN)


def test_export_shows_everything_but_secrets() -> None:
    row_id = uuid.uuid4()

    class Row:
        id = row_id
        name = "Jan"
        email = "jan@example.nl"
        debtor_number = 100001
        password_hash = "$argon2id$..."
        plan = "pro"

    assert export_row(customers, Row()) == {
        "id": str(row_id),
        "name": "Jan",
        "email": "jan@example.nl",
        "debtor_number": 100001,
        "password_hash": "[stored, not disclosed]",
        "plan": "pro",
    }


def test_not_null_non_text_columns_cannot_be_silently_kept() -> None:
    table = Table(
        "bad", MetaData(), Column("age", Integer, nullable=False, info=pii(PiiCategory.CONTACT))
    )
    with pytest.raises(TypeError, match="cannot redact"):
        erasure_values(table)


@pytest.mark.parametrize("base", [IdentityBase, ShippingBase, PrivacyBase])
def test_every_service_schema_can_be_erased(base: type) -> None:
    """Each service's annotated tables yield a valid erasure (no unredactable column)."""
    for table in base.metadata.sorted_tables:  # type: ignore[attr-defined]
        erasure_values(table)
    assert any(True for _ in iter_pii_columns(base.metadata))  # type: ignore[attr-defined]


def test_request_log_rows_are_deleted_not_masked() -> None:
    from libs.common.pii import TableErasure, table_erasure
    from services.shipping_api.models import RequestLog

    assert table_erasure(RequestLog.__table__) is TableErasure.DELETE  # type: ignore[arg-type]
    assert erasure_values(RequestLog.__table__) == {}  # type: ignore[arg-type]


def test_export_lines_are_the_records_of_export_row() -> None:
    """The fast rendering writes what ``export_row`` gives, byte for byte, for every kind of
    value a column holds (and for rows that are not plain ``select(table)`` rows)."""
    import datetime as dt
    import decimal
    import enum

    import orjson
    from sqlalchemy import JSON, Boolean, Date, DateTime, Enum, LargeBinary, Numeric, create_engine

    from libs.common.pii import export_lines

    class Mode(enum.Enum):
        LIVE = "live"

    table = Table(
        "things",
        MetaData(),
        Column("id", Uuid, primary_key=True),
        Column("at", DateTime(timezone=True)),
        Column("on", Date),
        Column("amount", Numeric(10, 2)),
        Column("blob", LargeBinary),
        Column("mode", Enum(Mode)),
        Column("extra", JSON),
        Column("flag", Boolean),
        Column("secret", String(50), info=pii(PiiCategory.CREDENTIALS, exportable=False)),
        Column("name", String(50), key="label", info=pii(PiiCategory.CONTACT)),
    )
    engine = create_engine("sqlite://")
    table.metadata.create_all(engine)
    values = [
        {
            "id": uuid.uuid4(),
            "at": dt.datetime(2026, 1, 2, 3, 4, 5, 6),
            "on": dt.date(2026, 1, 2),
            "amount": decimal.Decimal("12.50"),
            "blob": b"\x00\x01",
            "mode": Mode.LIVE,
            "extra": {"tags": ["a", "é"], "n": 1.5},
            "flag": True,
            "secret": "hash",
            "label": 'Zoë "quoted"\n',
        },
        {"id": uuid.uuid4(), **dict.fromkeys(["at", "on", "amount", "blob", "mode", "extra"])}
        | dict.fromkeys(["flag", "secret", "label"]),
    ]
    with engine.begin() as conn:
        conn.execute(table.insert(), values)
        rows = conn.execute(select(table).order_by(table.c.id)).all()
        reordered = conn.execute(select(*reversed(table.c)).order_by(table.c.id)).all()
    meta = {"table": "things", "pii_categories": ["contact", "credentials"]}
    expected = orjson.dumps(meta) + b"\n"
    expected += b"".join(
        orjson.dumps(
            {
                "category": "things",
                "table": "things",
                "record": {str(k): v for k, v in export_row(table, row).items()},
            }
        )
        + b"\n"
        for row in rows
    )
    assert export_lines("things", table, rows) == expected
    assert export_lines("things", table, reordered) == expected
    assert export_lines("things", table, []) == b""
    # Limited to some categories, the first line names only those the export holds.
    limited = export_lines("things", table, rows, categories=frozenset({"contact", "financial"}))
    first, *records = limited.splitlines()
    assert orjson.loads(first) == {"table": "things", "pii_categories": ["contact"]}
    assert [set(orjson.loads(line)["record"]) for line in records] == [
        {"id", "at", "on", "amount", "blob", "mode", "extra", "flag", "label"}
    ] * 2
    assert export_lines("things", table, rows, categories=frozenset({"financial"})) == b""


def test_the_export_names_the_pii_categories_of_a_real_table() -> None:
    import orjson

    from libs.common.pii import export_meta
    from services.shipping_api.models import Shipment

    table = Shipment.__table__
    assert orjson.loads(export_meta(table)) == {
        "table": "shipments",
        "pii_categories": [
            "account_identifier",
            "recipient_address",
            "recipient_contact",
            "shipment_details",
        ],
    }
    limited = frozenset({"recipient_contact", "financial"})
    assert orjson.loads(export_meta(table, limited)) == {
        "table": "shipments",
        "pii_categories": ["recipient_contact"],
    }
