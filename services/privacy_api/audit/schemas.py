"""Audit-log entries as the privacy officer reads them."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel


class AuditEntryRead(BaseModel):
    id: uuid.UUID
    at: datetime
    actor: str
    actor_kind: str
    actor_roles: list[str]
    action: str
    object_type: str
    object_id: str | None
    details: dict[str, Any]
    http_request_id: str | None
