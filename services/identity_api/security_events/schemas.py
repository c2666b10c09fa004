"""Security events as the account holder sees them."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from services.identity_api.models import SecurityEventType


class SecurityEventRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    type: SecurityEventType = Field(description="What happened.", examples=["login_succeeded"])
    created_at: datetime
    ip: str | None = Field(
        description="The address the request came from.", examples=["203.0.113.7"]
    )
    user_agent: str | None = Field(description="The client that sent the request.")
    details: dict[str, Any] = Field(
        description="Context, e.g. the API key's name or the changed fields.",
        examples=[{"key_id": "0190f6e2-7d3c-7cc4-b1b4-0b1f5e0c9a11", "name": "Webshop"}],
    )
