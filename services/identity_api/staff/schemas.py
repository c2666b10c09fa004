"""Staff schemas."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

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


class StaffIntrospectionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    staff_id: uuid.UUID = Field(
        description="The `sub` of a staff access token.",
        examples=["0b8f4f7e-2f64-4b8e-9a55-3c1d7f0e9a21"],
    )


class StaffIntrospection(BaseModel):
    active: bool = Field(description="`false` for unknown and disabled staff members.")
    roles: list[StaffRole] = Field(
        default_factory=list, description="The staff member's roles now (empty when inactive)."
    )
