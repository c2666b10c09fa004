"""Bodies and answers of ``/internal/v1/subjects/...`` (decision 0004)."""

from __future__ import annotations

import uuid
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, model_validator

from libs.common.pii import PiiCategory
from libs.common.subjects import EraseResult as EraseResult
from libs.common.subjects import KeptField as KeptField
from libs.common.subjects import RectifyResult as RectifyResult
from libs.common.subjects import RestrictResult as RestrictResult
from libs.common.validation import Email, Phone


class Subject(BaseModel):
    model_config = ConfigDict(extra="forbid")

    account_id: uuid.UUID | None = None
    email: Email | None = None
    phone: Phone | None = Field(
        None, description="Part of the shared subject (0004); accounts are never found by it."
    )

    @model_validator(mode="after")
    def _something(self) -> Subject:
        if self.account_id is None and self.email is None and self.phone is None:
            raise ValueError("give at least one of account_id, email, phone")
        return self


class SubjectCall(BaseModel):
    model_config = ConfigDict(extra="forbid")

    subject: Subject
    request_id: str = Field(
        min_length=1, max_length=128, description="The privacy request's id: retries are no-ops."
    )


class ExportCall(SubjectCall):
    categories: list[PiiCategory] | None = Field(
        None,
        min_length=1,
        max_length=len(PiiCategory),
        description="Only the data of these categories (a disclosure, decision 0308): the "
        "columns annotated with them and the unannotated ones; null: everything.",
        examples=[["contact", "address"]],
    )

    @property
    def scope(self) -> frozenset[str] | None:
        return frozenset(self.categories) if self.categories is not None else None


class Basis(StrEnum):
    RESTRICTION = "restriction"  # AVG art. 18
    OBJECTION = "objection"  # AVG art. 21


class RestrictCall(SubjectCall):
    restricted: StrictBool
    basis: Basis


class RectifyCall(SubjectCall):
    changes: dict[str, Any] = Field(
        min_length=1, description="Field names of the account and their corrected values."
    )
