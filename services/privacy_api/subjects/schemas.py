"""Bodies of the internal data-subject API (decision 0004), shared by the routes privacy answers
and the calls privacy makes to the other services."""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, model_validator

from libs.common.subjects import RectifyResult as RectifyResult
from libs.common.subjects import RestrictResult as RestrictResult
from libs.common.validation import Email, Phone
from services.privacy_api.models import RestrictionBasis


class Subject(BaseModel):
    """What we know of a person: their account, or a verified e-mail address (and phone)."""

    model_config = ConfigDict(extra="forbid")

    account_id: uuid.UUID | None = Field(None, examples=["0190f6e2-7d3c-7cc4-b1b4-0b1f5e0c9a11"])
    email: Email | None = None
    phone: Phone | None = None

    @model_validator(mode="after")
    def _at_least_one(self) -> Subject:
        if self.account_id is None and self.email is None and self.phone is None:
            raise ValueError("a subject needs an account_id, an email or a phone")
        return self


class SubjectCall(BaseModel):
    model_config = ConfigDict(extra="forbid")

    subject: Subject
    request_id: uuid.UUID = Field(description="The privacy request; a repeat changes nothing.")


class RestrictCall(SubjectCall):
    restricted: StrictBool = True
    basis: RestrictionBasis = RestrictionBasis.RESTRICTION


class RectifyCall(SubjectCall):
    changes: dict[str, Any] = Field(description="Field name to corrected value.")


class KeptField(BaseModel):
    table: str
    field: str
    category: str
    reason: str
    retain_years: int | None = None


class EraseResult(BaseModel):
    service: str
    erased: dict[str, int] = Field(description="Rows erased or anonymised, per table.")
    kept: list[KeptField] = Field(description="What a legal obligation keeps, and why.")
