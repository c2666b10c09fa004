"""Breach-register bodies."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from libs.common.pii import PiiCategory
from libs.common.validation import Integer, NotNull, Timestamp
from services.privacy_api.models import IncidentRisk

Text = Annotated[str, Field(min_length=1, max_length=10_000)]
MAX_SUBJECTS = 1_000_000_000
"""Far above any real breach, and within the column's 32-bit integer."""


class IncidentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=1, max_length=200, examples=["Label PDFs readable by others"])
    description: Text = Field(description="What happened, as far as known.")
    became_aware_at: Timestamp = Field(
        description="When we became aware: the 72 hours to notify the AP start here (art. 33(1))."
    )
    occurred_at: Timestamp | None = None
    categories: list[PiiCategory] = Field(
        min_length=1, max_length=len(PiiCategory), examples=[["recipient_address"]]
    )
    subjects_count: Integer = Field(
        ge=0, le=MAX_SUBJECTS, description="Approximate number of people involved."
    )
    risk: IncidentRisk = IncidentRisk.UNASSESSED
    risk_assessment: Text | None = None
    measures: Text | None = Field(None, description="Measures taken or proposed.")


class IncidentUpdate(BaseModel):
    """Fields left out stay as they are. The time of awareness, and so the deadline, is fixed."""

    model_config = ConfigDict(extra="forbid")

    description: Annotated[Text | None, NotNull()] = None
    categories: Annotated[list[PiiCategory] | None, NotNull()] = Field(
        None, min_length=1, max_length=len(PiiCategory)
    )
    subjects_count: Annotated[Integer | None, NotNull()] = Field(None, ge=0, le=MAX_SUBJECTS)
    risk: Annotated[IncidentRisk | None, NotNull()] = None
    risk_assessment: Text | None = None
    measures: Text | None = None
    ap_notified_at: Timestamp | None = None
    ap_reference: str | None = Field(None, max_length=100, examples=["AP-2026-123456"])
    subjects_notified_at: Timestamp | None = None
    subjects_not_notified_reason: Text | None = Field(
        None, description="Art. 34(3): why the people involved are not told."
    )
    closed: Annotated[StrictBool | None, NotNull()] = Field(
        None, description="`true` closes the breach (once assessed and notified)."
    )


class IncidentRead(BaseModel):
    id: uuid.UUID
    title: str
    description: str
    occurred_at: datetime | None
    became_aware_at: datetime
    ap_deadline: datetime = Field(description="72 hours after awareness (art. 33(1)).")
    ap_notification_required: bool = Field(
        description="False only when the breach is assessed as unlikely to result in a risk."
    )
    is_overdue: bool = Field(description="The AP deadline passed without a notification.")
    categories: list[PiiCategory]
    subjects_count: int
    risk: IncidentRisk
    risk_assessment: str | None
    measures: str | None
    ap_notified_at: datetime | None
    ap_reference: str | None
    subjects_notified_at: datetime | None
    subjects_not_notified_reason: str | None
    closed_at: datetime | None
    created_by: str
    created_at: datetime
