"""Bodies of the internal data-subject routes (decision 0004)."""

from __future__ import annotations

import uuid
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, model_validator

from libs.common.pii import PiiCategory
from libs.common.subjects import EraseResult, RectifyResult, RestrictResult
from libs.common.subjects import KeptField as KeptField

SERVICE_NAME = "shipping"


class Subject(BaseModel):
    model_config = ConfigDict(extra="forbid")

    account_id: uuid.UUID | None = None
    email: str | None = Field(None, max_length=254, examples=["jan.jansen@example.nl"])
    phone: str | None = Field(None, max_length=32, examples=["+31612345678"])

    @model_validator(mode="after")
    def _someone(self) -> Subject:
        if self.account_id is None and not self.email and not self.phone:
            raise ValueError("give at least one of account_id, email, phone")
        return self


class SubjectCall(BaseModel):
    model_config = ConfigDict(extra="forbid")

    subject: Subject
    request_id: str = Field(
        min_length=1, max_length=64, description="The privacy request: a retry never applies twice."
    )


class ExportCall(SubjectCall):
    categories: list[PiiCategory] | None = Field(
        None,
        min_length=1,
        max_length=len(PiiCategory),
        description="Only the data of these categories (a disclosure, decision 0308): the "
        "columns annotated with them and the unannotated ones; null: everything.",
        examples=[["recipient_contact", "recipient_address", "shipment_details"]],
    )

    @property
    def scope(self) -> frozenset[str] | None:
        return frozenset(self.categories) if self.categories is not None else None


class RestrictionBasis(StrEnum):
    RESTRICTION = "restriction"  # AVG art. 18
    OBJECTION = "objection"  # AVG art. 21


class RestrictCall(SubjectCall):
    restricted: StrictBool
    basis: RestrictionBasis


class RectifyCall(SubjectCall):
    changes: dict[str, Any] = Field(
        min_length=1,
        description=(
            "Recipient fields to correct: name, contact_person, street, house_number, postcode, "
            "city, country, email, phone."
        ),
    )


class EraseAnswer(EraseResult):
    service: str = SERVICE_NAME


class RestrictAnswer(RestrictResult):
    service: str = SERVICE_NAME


class RectifyAnswer(RectifyResult):
    service: str = SERVICE_NAME
