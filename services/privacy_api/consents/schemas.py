"""Consent bodies: decisions in, current state and history out."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, StrictBool, model_validator

from services.privacy_api.models import ConsentPurpose, ConsentSource


class ConsentDecision(BaseModel):
    model_config = ConfigDict(extra="forbid")

    granted: StrictBool = Field(description="`true` gives consent, `false` withdraws it.")
    text_version: str | None = Field(
        None,
        max_length=32,
        description="Version of the consent text shown to the person (required when giving "
        "consent); see `current_text` in `GET /v1/privacy/consents`.",
        examples=["2018-05-24"],
    )


class ConsentUpdate(BaseModel):
    """Give or withdraw consent per purpose; purposes left out stay as they are."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "profiling": {"granted": True, "text_version": "2018-05-24"},
                    "analytics_cookies": {"granted": False},
                    "source": "account_settings",
                }
            ]
        },
    )

    profiling: ConsentDecision | None = None
    personalised_ads: ConsentDecision | None = None
    analytics_cookies: ConsentDecision | None = None
    source: ConsentSource = Field(
        description="Where the decision was made: `account_settings`, `cookie_banner` or "
        "`registration`.",
        examples=["account_settings"],
    )

    @model_validator(mode="after")
    def _something_to_change(self) -> ConsentUpdate:
        if all(getattr(self, p.value) is None for p in ConsentPurpose):
            raise ValueError("give a decision for at least one purpose")
        return self

    def decisions(self) -> dict[ConsentPurpose, ConsentDecision]:
        return {
            purpose: decision
            for purpose in ConsentPurpose
            if (decision := getattr(self, purpose.value)) is not None
        }


class ConsentTextRead(BaseModel):
    version: str = Field(examples=["2018-05-24"])
    text: str


class ConsentRead(BaseModel):
    purpose: ConsentPurpose
    granted: bool = Field(description="No decision yet means no consent.")
    text_version: str | None = Field(description="The text the person agreed to.")
    source: ConsentSource | None
    changed_at: datetime | None
    current_text: ConsentTextRead = Field(description="The text to show when asking now.")


class ConsentsRead(BaseModel):
    consents: list[ConsentRead]
    objection: bool = Field(
        description="An objection (art. 21) was recorded: profiling and personalised "
        "advertisements stay off whatever the consents say."
    )
    restricted: bool = Field(description="Processing is restricted (art. 18 or 21).")


class ConsentEventRead(BaseModel):
    id: uuid.UUID
    purpose: ConsentPurpose
    granted: bool
    text_version: str | None
    source: ConsentSource
    recorded_at: datetime
    privacy_request_id: uuid.UUID | None = Field(
        description="Set when the change came from a privacy request (an objection)."
    )


class EffectiveConsents(BaseModel):
    """What another service may do for this subject now (decision 0004)."""

    profiling: bool
    personalised_ads: bool
    analytics_cookies: bool
    objection: bool
