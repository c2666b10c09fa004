"""Loading the register from ``processing_activities.toml`` and answering questions about it."""

from __future__ import annotations

import tomllib
from functools import lru_cache
from pathlib import Path

from services.privacy_api.register.schemas import (
    ConsentText,
    DataCategory,
    ProcessingActivities,
    Purpose,
)

REGISTER_FILE = Path(__file__).resolve().parent.parent / "processing_activities.toml"


class RegisterError(ValueError):
    """The data file contradicts itself (a key used but not described)."""


def load_register(path: Path = REGISTER_FILE) -> ProcessingActivities:
    with path.open("rb") as handle:
        register = ProcessingActivities.model_validate(tomllib.load(handle))
    check_consistency(register)
    return register


@lru_cache(maxsize=1)
def register() -> ProcessingActivities:
    """The register of this installation (read once per process)."""
    return load_register()


def check_consistency(register: ProcessingActivities) -> None:
    bases = {basis.key for basis in register.legal_bases}
    recipients = {recipient.key for recipient in register.recipients}
    categories = {category.key for category in register.categories}
    numbers = sorted(purpose.number for purpose in register.purposes)
    if numbers != list(range(1, 11)):
        raise RegisterError(f"the register must list purposes 1 to 10, found {numbers}")
    for purpose in register.purposes:
        for key, known, kind in (
            (purpose.legal_bases, bases, "legal basis"),
            (purpose.recipients, recipients, "recipient"),
            (purpose.categories, categories, "category"),
        ):
            unknown = set(key) - known
            if unknown:
                raise RegisterError(f"purpose {purpose.number}: unknown {kind} {sorted(unknown)}")
    for category in register.categories:
        unknown = set(category.sources) - set(register.sources)
        if unknown:
            raise RegisterError(f"category {category.key}: unknown source {sorted(unknown)}")


def uncovered_categories(register: ProcessingActivities, used: set[str]) -> set[str]:
    """Categories in ``used`` that the register does not describe or no purpose processes."""
    described = {category.key for category in register.categories}
    processed = {key for purpose in register.purposes for key in purpose.categories}
    return {category for category in used if category not in described or category not in processed}


def category(key: str) -> DataCategory | None:
    return next((c for c in register().categories if c.key == key), None)


def purposes_for(categories: set[str]) -> list[Purpose]:
    return [p for p in register().purposes if categories.intersection(p.categories)]


def consent_text(purpose: str, version: str) -> ConsentText | None:
    return next(
        (t for t in register().consent_texts if t.purpose == purpose and t.version == version),
        None,
    )


def current_consent_text(purpose: str) -> ConsentText:
    texts = [t for t in register().consent_texts if t.purpose == purpose]
    return max(texts, key=lambda t: t.version)
