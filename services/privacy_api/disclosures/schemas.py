"""Disclosure bodies."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from libs.common.pii import PiiCategory
from libs.common.validation import Timestamp
from services.privacy_api.models import Authority, DisclosureDecision, RequestStatus
from services.privacy_api.subjects.schemas import Subject

Text = Annotated[str, Field(min_length=1, max_length=10_000)]


class DisclosureCreate(BaseModel):
    """An authority's request, with how its powers were checked by the officer recording it."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "authority": "police",
                    "authority_name": "Politie Eenheid Rotterdam",
                    "authority_reference": "PL1700-2026-123456",
                    "legal_basis": "Art. 126nd Wetboek van Strafvordering (vordering "
                    "verstrekking gegevens), order of the officier van justitie",
                    "requested_data": "Shipments sent to this e-mail address in 2026",
                    "subject": {"email": "jan.jansen@example.nl"},
                    "categories": ["recipient_contact", "recipient_address", "shipment_details"],
                    "powers_verification": "Order signed by the officier van justitie; called "
                    "the public prosecutor's office on its published number to confirm.",
                }
            ]
        },
    )

    authority: Authority
    authority_name: str = Field(min_length=1, max_length=200)
    authority_reference: str | None = Field(None, max_length=200)
    legal_basis: Text = Field(description="The legal power the authority invokes.")
    requested_data: Text = Field(description="What the authority asks for, in its words.")
    subject: Subject
    categories: list[PiiCategory] = Field(
        max_length=len(PiiCategory),
        min_length=1,
        description="The export is limited to these categories.",
    )
    received_at: Timestamp | None = Field(None, description="Default: now.")
    powers_verification: Text = Field(
        description="How the authority's powers and the request's authenticity were checked."
    )


class DisclosureDecide(BaseModel):
    model_config = ConfigDict(extra="forbid")

    decision: Literal["approved", "rejected"]
    reason: Text = Field(description="Why; recorded in the register.")


class DisclosureRead(BaseModel):
    id: uuid.UUID
    authority: Authority
    authority_name: str
    authority_reference: str | None
    legal_basis: str
    requested_data: str
    subject: Subject
    categories: list[PiiCategory]
    received_at: datetime
    powers_verified_by: str
    powers_verification: str
    powers_verified_at: datetime
    decision: DisclosureDecision
    decision_reason: str | None
    decided_by: str | None
    decided_at: datetime | None
    export_request_id: uuid.UUID | None = Field(
        description="The privacy request that produces the scoped export, once approved."
    )
    export_status: RequestStatus | None
    export_available: bool
    created_by: str
