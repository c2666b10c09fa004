"""Privacy-request bodies: what a requester or the privacy officer sends, what they get back."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from libs.common.validation import Email, Integer, Phone, Timestamp
from services.privacy_api.models import (
    RequestSource,
    RequestStatus,
    RequestType,
    ServiceName,
    TaskAction,
    TaskStatus,
    VerificationMethod,
)

Text2000 = Annotated[str, Field(min_length=1, max_length=2000)]


class RectificationChanges(BaseModel):
    """Corrected values per service, under the names used in your export (e.g.
    `identity/contact.json`). Each service checks its own fields."""

    model_config = ConfigDict(extra="forbid")

    identity: dict[str, Any] | None = Field(
        None,
        description='Your account details, e.g. `{"street": "Griede", "iban": "..."}`.',
        examples=[{"street": "Griede", "house_number": "22"}],
    )
    shipping: dict[str, Any] | None = Field(
        None,
        description='Your details as a parcel recipient, e.g. `{"phone": "+31612345678"}`.',
    )

    @model_validator(mode="after")
    def _not_empty(self) -> RectificationChanges:
        if not self.identity and not self.shipping:
            raise ValueError("give the corrected fields for at least one service")
        return self

    def per_service(self) -> dict[ServiceName, dict[str, Any]]:
        out: dict[ServiceName, dict[str, Any]] = {}
        if self.identity:
            out[ServiceName.IDENTITY] = self.identity
        if self.shipping:
            out[ServiceName.SHIPPING] = self.shipping
        return out


class PrivacyRequestCreate(BaseModel):
    """A privacy request.

    * **Account holders** (logged in) send only `type` (plus `changes`, `grounds`, `message`
      where they apply): their account is the subject and they are verified at once.
    * **Without an account** (e.g. a parcel recipient) send `email`; a 6-digit code is mailed
      to that address, to be sent to `/verify`. Only that confirmed address is used to find
      your data, so `phone` is refused (`422`): for parcels known only by your phone number,
      write to the privacy officer. Keep the returned `access_token`: it is needed to follow
      the request and to download an export.
    * **The privacy officer** enters a request received by letter with `account_id` and/or
      `email` (and `phone`, once checked), `received_at` and a `verification_note` on how the
      identity was checked (the copy of the ID itself is never stored).
    """

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"type": "access"},
                {"type": "erasure", "email": "jan.jansen@example.nl"},
                {"type": "rectification", "changes": {"identity": {"street": "Griede"}}},
            ]
        },
    )

    type: RequestType = Field(description="The right exercised.", examples=["access"])
    email: Email | None = Field(None, description="Without an account, or by letter.")
    phone: Phone | None = Field(
        None,
        description="Privacy officer only (letters): a phone number whose holder was checked.",
    )
    account_id: uuid.UUID | None = Field(None, description="Privacy officer only (letters).")
    message: Text2000 | None = Field(None, description="Anything you want to tell us.")
    changes: RectificationChanges | None = Field(None, description="Rectification only.")
    grounds: Text2000 | None = Field(
        None, description="Objection only: your particular situation (art. 21(1))."
    )
    verification_note: Text2000 | None = Field(
        None,
        description="Privacy officer only: how the identity was checked, e.g. `passport seen, "
        "BSN blacked out, copy destroyed`.",
    )
    received_at: Timestamp | None = Field(
        None, description="Privacy officer only: when the letter arrived (default: now)."
    )


class VerifyCode(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(
        min_length=6,
        max_length=6,
        pattern=r"^[0-9]{6}$",
        description="The 6-digit code from the e-mail.",
        examples=["042917"],
    )


class ExtendDeadline(BaseModel):
    """AVG art. 12(3): once, by at most two months, with the reason told to the subject."""

    model_config = ConfigDict(extra="forbid")

    months: Integer = Field(ge=1, le=2, examples=[2])
    reason: Text2000 = Field(examples=["The request covers seven years of shipments."])


class RejectRequest(BaseModel):
    """AVG art. 12(4)-(6): why we do not act on the request (the subject is told, with their
    right to complain to the AP)."""

    model_config = ConfigDict(extra="forbid")

    reason: Text2000 = Field(examples=["Identity could not be verified."])


class TaskRead(BaseModel):
    service: ServiceName
    action: TaskAction
    status: TaskStatus
    attempts: int
    last_error: str | None = Field(description="Why the last attempt failed.")
    result: dict[str, Any] | None = Field(
        description="The service's answer, e.g. what was erased and what was kept and why."
    )
    finished_at: datetime | None


class ExportRead(BaseModel):
    available: bool
    size_bytes: int | None
    expires_at: datetime | None = Field(description="After this the ZIP is deleted.")
    download_path: str | None = Field(examples=["/v1/privacy/requests/0190…/export"])


class ExtensionRead(BaseModel):
    months: int
    reason: str
    extended_at: datetime


class PrivacyRequestRead(BaseModel):
    id: uuid.UUID
    type: RequestType
    status: RequestStatus
    source: RequestSource
    account_id: uuid.UUID | None
    email: str | None
    phone: str | None
    message: str | None
    grounds: str | None
    changes: dict[str, Any] | None
    received_at: datetime
    due_at: datetime = Field(description="One month after receipt, unless extended.")
    is_overdue: bool
    extension: ExtensionRead | None
    verified_at: datetime | None
    verification_method: VerificationMethod | None
    verification_note: str | None
    completed_at: datetime | None
    rejection_reason: str | None
    failure_reason: str | None
    tasks: list[TaskRead]
    export: ExportRead | None = Field(description="Access and portability requests only.")


class PrivacyRequestCreated(PrivacyRequestRead):
    access_token: str | None = Field(
        description="Requests without an account only, shown once: send it as "
        "`X-Privacy-Request-Token` to follow the request, verify it and download the export."
    )
