"""Body and answer of ``POST /internal/v1/accounts/{account_id}/notices``."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from libs.common.notices import NoticeKind
from libs.common.validation import AwareTimestamp


class SwitchedOffEndpoint(BaseModel):
    """The webhook endpoint shipping switched off (decision 0206)."""

    model_config = ConfigDict(extra="forbid")

    id: uuid.UUID = Field(description="The endpoint's id in `/v1/webhook-endpoints`.")
    url: str = Field(
        min_length=1, max_length=2048, examples=["https://shop.example.nl/parcelpro/webhook"]
    )
    failing_since: AwareTimestamp | None = Field(
        None,
        description="The first failed delivery of the run that ended in the switch-off; null "
        "when unknown.",
    )
    disabled_at: AwareTimestamp = Field(description="When the endpoint was switched off.")


class AccountNotice(BaseModel):
    """A notice for the account holder. ``kind`` says which; further kinds will be further
    models in a union discriminated by ``kind``."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "id": "0193a5b4-7c2e-7d10-9a3b-5c6d7e8f9a0b",
                    "kind": "webhook_endpoint_switched_off",
                    "webhook_endpoint": {
                        "id": "0193a5b4-1111-7d10-9a3b-5c6d7e8f9a0b",
                        "url": "https://shop.example.nl/parcelpro/webhook",
                        "failing_since": "2026-11-20T09:00:00Z",
                        "disabled_at": "2026-11-25T09:03:00Z",
                    },
                }
            ]
        },
    )

    id: uuid.UUID = Field(
        description="The sender's id of this notice: the same id again is a retry, answered "
        "as the first time and mailed only once."
    )
    kind: Literal[NoticeKind.WEBHOOK_ENDPOINT_SWITCHED_OFF]
    webhook_endpoint: SwitchedOffEndpoint


class AccountNoticeAccepted(BaseModel):
    """The notice is recorded and its mail queued."""

    id: uuid.UUID
    account_id: uuid.UUID
    kind: NoticeKind
    accepted_at: datetime = Field(description="When the notice was first accepted.")
