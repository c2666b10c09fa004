"""The Art. 30 register: public, the ten purposes of the privacy statement, and complete for
every PII-annotated column of every service."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
from sqlalchemy import MetaData

from libs.common.pii import PiiCategory, iter_pii_columns
from services.privacy_api.register.service import (
    REGISTER_FILE,
    RegisterError,
    load_register,
    uncovered_categories,
)
from tests.support.privacy_harness import Privacy

SERVICE_MODELS = (
    "services.identity_api.models",
    "services.shipping_api.models",
    "services.privacy_api.models",
)


def all_service_metadata() -> list[MetaData]:
    """Every service's tables, including those added after this test was written."""
    return [importlib.import_module(name).Base.metadata for name in SERVICE_MODELS]


async def test_register_is_public_with_the_ten_purposes(privacy: Privacy) -> None:
    response = await privacy.client.get("/v1/privacy/processing-activities")
    assert response.status_code == 200
    body = response.json()
    assert [p["number"] for p in body["purposes"]] == list(range(1, 11))
    assert body["purposes"][9]["name_nl"] == "Betaalsystemen"
    recipients = {r["key"] for r in body["recipients"]}
    assert {
        "carriers",
        "mollie",
        "postcode_ideal",
        "police",
        "justice",
        "ap",
        "acm",
        "belastingdienst",
    } <= recipients
    assert {c["key"] for c in body["categories"]} == {c.value for c in PiiCategory}
    assert body["controller"]["privacy_officer_email"] == "privacy@parcelpro.nl"


def test_every_pii_column_of_every_service_is_covered_by_the_register() -> None:
    register = load_register()
    uncovered: dict[str, set[str]] = {}
    for metadata in all_service_metadata():
        for table, column, spec in iter_pii_columns(metadata):
            if uncovered_categories(register, {spec.category.value}):
                uncovered.setdefault(spec.category.value, set()).add(f"{table.name}.{column.key}")
    assert uncovered == {}, f"categories missing from {REGISTER_FILE.name}: {uncovered}"


def test_the_coverage_check_catches_a_category_the_register_lacks() -> None:
    register = load_register()
    trimmed = register.model_copy(
        update={"categories": [c for c in register.categories if c.key != "financial"]}
    )
    assert uncovered_categories(trimmed, {"financial", "contact"}) == {"financial"}
    unprocessed = register.model_copy(
        update={
            "purposes": [
                p.model_copy(update={"categories": [c for c in p.categories if c != "incident"]})
                for p in register.purposes
            ]
        }
    )
    assert uncovered_categories(unprocessed, {"incident"}) == {"incident"}


def test_a_register_naming_an_unknown_recipient_is_refused(tmp_path: Path) -> None:
    broken = tmp_path / "register.toml"
    text = REGISTER_FILE.read_text().replace(
        'recipients = ["mollie", "postcode_ideal"]', 'recipients = ["mollie", "ing"]'
    )
    broken.write_text(text)
    with pytest.raises(RegisterError, match="unknown recipient"):
        load_register(broken)
