"""Staff schemas."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, Field

from services.identity_api.models import StaffRole


class StaffRead(BaseModel):
    id: uuid.UUID
    email: str
    name: str | None
    role: StaffRole
    is_active: bool
    created_at: datetime
    last_login_at: datetime | None
    disabled_at: datetime | None


class AccessLogRead(BaseModel):
    id: uuid.UUID
    staff_id: uuid.UUID = Field(description="Who read the data.")
    account_id: uuid.UUID | None = Field(description="Whose data was read.")
    action: str = Field(examples=["account.read", "account.search"])
    fields: list[str] = Field(description="What was shown.")
    query: str | None = Field(description="What was searched for, for searches.")
    reason: str = Field(description="Why, as the staff member stated it.")
    ip: str | None
    created_at: datetime = Field(description="When.")
