"""Bodies of the support-note routes."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class NoteChannel(StrEnum):
    PHONE = "phone"
    EMAIL = "email"
    CHAT = "chat"
    LETTER = "letter"


class NoteCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    channel: NoteChannel = Field(description="How the contact happened.")
    body: str = Field(
        min_length=1,
        max_length=5000,
        description="What was asked and agreed. Personal data: keep it to what support needs.",
        examples=["Recipient called: not home Thursday, asked for delivery to pickup point."],
    )


class NoteRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    shipment_id: uuid.UUID
    channel: NoteChannel
    body: str
    author_staff_id: uuid.UUID
    created_at: datetime
