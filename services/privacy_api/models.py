"""Tables of privacy_api (schema ``privacy`` on PostgreSQL), and the vocabularies they store."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from libs.common.db import (
    TYPE_ANNOTATION_MAP,
    JSONType,
    Timestamps,
    UUIDPrimaryKey,
    new_metadata,
    utcnow,
)
from libs.common.idempotency import IdempotencyKeyMixin
from libs.common.pii import Erasure, PiiCategory, pii
from libs.common.request_log import RequestLogMixin

# Reasons a column outlives an erasure request; the subject is told them (Art. 17(3)).
PROOF_OF_HANDLING = (
    "AVG art. 5(2) and 12: proof that the privacy request was received, verified and handled"
)
HONOUR_OBJECTION = (
    "AVG art. 18 and 21: the restriction or objection must keep being honoured, so the record "
    "of it is kept"
)
DISCLOSURE_ACCOUNTABILITY = (
    "AVG art. 5(2) and 6(1)(c): record of a disclosure to an authority under its legal power"
)
INCIDENT_DOCUMENTATION = "AVG art. 33(5): documentation of personal data breaches"
STAFF_ACCOUNTABILITY = "AVG art. 5(2): who did what in the privacy registers"
CORRESPONDENCE = "Correspondence about a privacy request, deleted after the outbox retention period"


# One function per retention rule, so each rule's reason and term are written once.
def kept_as_proof(category: PiiCategory, *, exportable: bool = True) -> dict[str, Any]:
    """Kept two years as proof that a privacy request was handled."""
    return pii(
        category,
        erasure=Erasure.RETAIN,
        retain_reason=PROOF_OF_HANDLING,
        retain_years=2,
        exportable=exportable,
    )


def kept_to_honour_objection(category: PiiCategory, *, exportable: bool = True) -> dict[str, Any]:
    """Who a restriction or objection is about, kept for as long as it must be honoured."""
    return pii(
        category, erasure=Erasure.RETAIN, retain_reason=HONOUR_OBJECTION, exportable=exportable
    )


def kept_as_disclosure_record() -> dict[str, Any]:
    """A disclosure to an authority, kept five years."""
    return pii(
        PiiCategory.DISCLOSURE,
        erasure=Erasure.RETAIN,
        retain_reason=DISCLOSURE_ACCOUNTABILITY,
        retain_years=5,
    )


def kept_as_incident_record() -> dict[str, Any]:
    return pii(PiiCategory.INCIDENT, erasure=Erasure.RETAIN, retain_reason=INCIDENT_DOCUMENTATION)


def kept_as_staff_record() -> dict[str, Any]:
    return pii(PiiCategory.STAFF, erasure=Erasure.RETAIN, retain_reason=STAFF_ACCOUNTABILITY)


def kept_as_correspondence() -> dict[str, Any]:
    return pii(PiiCategory.PRIVACY_REQUEST, erasure=Erasure.RETAIN, retain_reason=CORRESPONDENCE)


class Base(DeclarativeBase):
    metadata = new_metadata()
    type_annotation_map = TYPE_ANNOTATION_MAP


class RequestLog(RequestLogMixin, Base):
    """Requests of authenticated account holders to this service (privacy statement: Logs)."""

    __tablename__ = "request_log"


class IdempotencyKey(IdempotencyKeyMixin, Base):
    """Stored first responses of creates sent with an ``Idempotency-Key`` (decision 0202)."""

    __tablename__ = "idempotency_keys"

    # A privacy request's answer names its subject (e-mail, phone, message); incident and
    # disclosure answers are the officer's registers, kept 24 hours here like the rest.
    response_pii_category = PiiCategory.PRIVACY_REQUEST


def account_scope(account_id: uuid.UUID) -> str:
    """Whose keys: an account holder's; the prefix keeps them apart from a staff user's."""
    return f"account:{account_id}"


# --------------------------------------------------------------------------------------------
# Vocabularies
# --------------------------------------------------------------------------------------------


class RequestType(StrEnum):
    """The right a data subject exercises (AVG art. 15-21)."""

    ACCESS = "access"  # art. 15
    PORTABILITY = "portability"  # art. 20
    RECTIFICATION = "rectification"  # art. 16
    RESTRICTION = "restriction"  # art. 18
    ERASURE = "erasure"  # art. 17
    OBJECTION = "objection"  # art. 21


class RequestStatus(StrEnum):
    PENDING_VERIFICATION = "pending_verification"
    VERIFIED = "verified"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    REJECTED = "rejected"
    FAILED = "failed"


OPEN_STATUSES = frozenset(
    {RequestStatus.PENDING_VERIFICATION, RequestStatus.VERIFIED, RequestStatus.IN_PROGRESS}
)


class RequestSource(StrEnum):
    """How the request reached us."""

    ACCOUNT = "account"  # an account holder, logged in
    EMAIL = "email"  # a person without an account, verified by a mailed code
    LETTER = "letter"  # a letter with a copy of an ID, entered by the privacy officer
    DISCLOSURE = "disclosure"  # the scoped export of an approved authority request


class VerificationMethod(StrEnum):
    ACCOUNT_LOGIN = "account_login"
    EMAIL_CODE = "email_code"
    ID_DOCUMENT = "id_document"  # checked by the privacy officer; the copy is never stored
    AUTHORITY_POWERS = "authority_powers"


class ServiceName(StrEnum):
    """The services that hold personal data; each answers the internal subject API."""

    IDENTITY = "identity"
    SHIPPING = "shipping"
    PRIVACY = "privacy"


class TaskAction(StrEnum):
    EXPORT = "export"
    ERASE = "erase"
    RESTRICT = "restrict"
    RECTIFY = "rectify"
    OBJECT = "object"  # privacy itself: withdraw consents, record the objection, restrict


class TaskStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class RestrictionBasis(StrEnum):
    RESTRICTION = "restriction"  # art. 18
    OBJECTION = "objection"  # art. 21


class ConsentPurpose(StrEnum):
    PROFILING = "profiling"
    PERSONALISED_ADS = "personalised_ads"
    ANALYTICS_COOKIES = "analytics_cookies"


class ConsentSource(StrEnum):
    """Where a consent decision was given or withdrawn."""

    ACCOUNT_SETTINGS = "account_settings"
    COOKIE_BANNER = "cookie_banner"
    REGISTRATION = "registration"
    OBJECTION_REQUEST = "objection_request"  # set by an objection, never by a client


class Authority(StrEnum):
    """The organisations the privacy statement names as entitled to request data."""

    POLICE = "police"
    JUSTICE = "justice"
    AP = "ap"  # Autoriteit Persoonsgegevens
    ACM = "acm"  # Autoriteit Consument & Markt
    BELASTINGDIENST = "belastingdienst"


class DisclosureDecision(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"


class IncidentRisk(StrEnum):
    """AVG art. 33(1) and 34(1): what the breach means for the people involved."""

    UNASSESSED = "unassessed"
    UNLIKELY = "unlikely"  # no notification to the AP needed (documented, art. 33(5))
    RISK = "risk"  # notify the AP within 72 hours
    HIGH_RISK = "high_risk"  # notify the AP and the people involved


# --------------------------------------------------------------------------------------------
# Privacy requests and their tasks
# --------------------------------------------------------------------------------------------


class PrivacyRequest(UUIDPrimaryKey, Timestamps, Base):
    """A data subject's request (AVG art. 15-21), from receipt to answer."""

    __tablename__ = "privacy_request"

    type: Mapped[str] = mapped_column(String(32), nullable=False)
    status: Mapped[str] = mapped_column(String(32), nullable=False)
    source: Mapped[str] = mapped_column(String(32), nullable=False)

    account_id: Mapped[uuid.UUID | None] = mapped_column(
        info=kept_as_proof(PiiCategory.ACCOUNT_IDENTIFIER)
    )
    email: Mapped[str | None] = mapped_column(
        String(254),
        info=kept_as_proof(PiiCategory.PRIVACY_REQUEST),
    )
    email_index: Mapped[str | None] = mapped_column(
        String(64),
        info=kept_as_proof(PiiCategory.PRIVACY_REQUEST, exportable=False),
    )
    phone: Mapped[str | None] = mapped_column(
        String(32),
        info=kept_as_proof(PiiCategory.PRIVACY_REQUEST),
    )
    phone_index: Mapped[str | None] = mapped_column(
        String(64),
        info=kept_as_proof(PiiCategory.PRIVACY_REQUEST, exportable=False),
    )
    message: Mapped[str | None] = mapped_column(Text, info=pii(PiiCategory.PRIVACY_REQUEST))
    grounds: Mapped[str | None] = mapped_column(Text, info=pii(PiiCategory.PRIVACY_REQUEST))
    """Objection: the person's particular situation (AVG art. 21(1))."""
    changes: Mapped[dict[str, Any] | None] = mapped_column(
        JSONType, info=pii(PiiCategory.PRIVACY_REQUEST)
    )
    """Rectification: the corrected values per service."""
    categories: Mapped[list[Any] | None] = mapped_column(JSONType)
    """Disclosures: the data categories the export is limited to (null: all)."""
    disclosure_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("disclosure.id", ondelete="RESTRICT")
    )

    received_at: Mapped[datetime] = mapped_column(nullable=False)
    due_at: Mapped[datetime] = mapped_column(nullable=False)
    extended_at: Mapped[datetime | None]
    extension_months: Mapped[int | None] = mapped_column(Integer)
    extension_reason: Mapped[str | None] = mapped_column(
        Text,
        info=kept_as_proof(PiiCategory.PRIVACY_REQUEST),
    )

    verified_at: Mapped[datetime | None]
    verification_method: Mapped[str | None] = mapped_column(String(32))
    verification_note: Mapped[str | None] = mapped_column(
        Text,
        info=kept_as_proof(PiiCategory.PRIVACY_REQUEST),
    )
    verified_by: Mapped[str | None] = mapped_column(
        String(64),
        info=kept_as_staff_record(),
    )
    created_by: Mapped[str | None] = mapped_column(
        String(64),
        info=kept_as_staff_record(),
    )

    code_hash: Mapped[str | None] = mapped_column(
        String(64), info=pii(PiiCategory.CREDENTIALS, exportable=False)
    )
    code_expires_at: Mapped[datetime | None]
    code_attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    access_token_hash: Mapped[str | None] = mapped_column(
        String(64),
        info=pii(
            PiiCategory.CREDENTIALS,
            erasure=Erasure.RETAIN,
            exportable=False,
            retain_reason="lets the requester follow their own request to its end",
            retain_years=2,
        ),
    )

    completed_at: Mapped[datetime | None]
    rejected_at: Mapped[datetime | None]
    rejection_reason: Mapped[str | None] = mapped_column(
        Text,
        info=kept_as_proof(PiiCategory.PRIVACY_REQUEST),
    )
    failure_reason: Mapped[str | None] = mapped_column(
        Text,
        info=kept_as_proof(PiiCategory.PRIVACY_REQUEST),
    )
    overdue_flagged_at: Mapped[datetime | None]
    finalize_lease_until: Mapped[datetime | None]

    export_file: Mapped[str | None] = mapped_column(String(255))
    export_size: Mapped[int | None] = mapped_column(Integer)
    export_expires_at: Mapped[datetime | None]
    export_purged_at: Mapped[datetime | None]
    anonymised_at: Mapped[datetime | None]

    __table_args__ = (
        Index("ix_privacy_request_account_id_id", "account_id", "id"),
        Index("ix_privacy_request_status_due_at", "status", "due_at"),
        Index("ix_privacy_request_email_index", "email_index"),
        Index("ix_privacy_request_phone_index", "phone_index"),
        Index("ix_privacy_request_disclosure_id", "disclosure_id"),
        Index("ix_privacy_request_export_expires_at", "export_expires_at"),
        Index("ix_privacy_request_completed_at", "completed_at"),
    )


class PrivacyTask(UUIDPrimaryKey, Base):
    """One service's share of a request, claimed by one worker at a time under a lease."""

    __tablename__ = "privacy_task"

    request_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("privacy_request.id", ondelete="CASCADE"), nullable=False
    )
    service: Mapped[str] = mapped_column(String(16), nullable=False)
    action: Mapped[str] = mapped_column(String(16), nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default=TaskStatus.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(nullable=False, default=utcnow)
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_expires_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text, info=pii(PiiCategory.PRIVACY_REQUEST))
    """A service's refusal or failure, which may quote what it holds about the subject."""
    result: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    created_at: Mapped[datetime] = mapped_column(nullable=False, default=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]

    __table_args__ = (
        UniqueConstraint("request_id", "service", "action"),
        Index("ix_privacy_task_status_next_attempt_at", "status", "next_attempt_at"),
        Index("ix_privacy_task_status_lease_expires_at", "status", "lease_expires_at"),
    )


# --------------------------------------------------------------------------------------------
# Consent, objections, restrictions
# --------------------------------------------------------------------------------------------


class Consent(UUIDPrimaryKey, Base):
    """A subject's current decision per purpose (the history is in ``consent_event``)."""

    __tablename__ = "consent"

    account_id: Mapped[uuid.UUID | None] = mapped_column(info=pii(PiiCategory.ACCOUNT_IDENTIFIER))
    email_index: Mapped[str | None] = mapped_column(
        String(64), info=pii(PiiCategory.CONSENT, exportable=False)
    )
    purpose: Mapped[str] = mapped_column(String(32), nullable=False)
    granted: Mapped[bool] = mapped_column(Boolean, nullable=False)
    text_version: Mapped[str | None] = mapped_column(String(32))
    source: Mapped[str] = mapped_column(String(32), nullable=False)
    changed_at: Mapped[datetime] = mapped_column(nullable=False)

    __table_args__ = (
        UniqueConstraint("account_id", "purpose"),
        UniqueConstraint("email_index", "purpose"),
    )


class ConsentEvent(UUIDPrimaryKey, Base):
    """Every consent given or withdrawn: time, source and the text version (AVG art. 7(1))."""

    __tablename__ = "consent_event"

    account_id: Mapped[uuid.UUID | None] = mapped_column(info=pii(PiiCategory.ACCOUNT_IDENTIFIER))
    email_index: Mapped[str | None] = mapped_column(
        String(64), info=pii(PiiCategory.CONSENT, exportable=False)
    )
    purpose: Mapped[str] = mapped_column(String(32), nullable=False)
    granted: Mapped[bool] = mapped_column(Boolean, nullable=False)
    text_version: Mapped[str | None] = mapped_column(String(32))
    source: Mapped[str] = mapped_column(String(32), nullable=False)
    recorded_at: Mapped[datetime] = mapped_column(nullable=False)
    privacy_request_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("privacy_request.id", ondelete="SET NULL")
    )

    __table_args__ = (
        Index("ix_consent_event_account_id_id", "account_id", "id"),
        Index("ix_consent_event_email_index", "email_index"),
        Index("ix_consent_event_privacy_request_id", "privacy_request_id"),
    )


class Objection(UUIDPrimaryKey, Base):
    """An objection (AVG art. 21) to profiling and personalised advertising."""

    __tablename__ = "objection"

    account_id: Mapped[uuid.UUID | None] = mapped_column(
        info=kept_to_honour_objection(PiiCategory.ACCOUNT_IDENTIFIER)
    )
    email_index: Mapped[str | None] = mapped_column(
        String(64),
        info=kept_to_honour_objection(PiiCategory.PRIVACY_REQUEST, exportable=False),
    )
    grounds: Mapped[str | None] = mapped_column(Text, info=pii(PiiCategory.PRIVACY_REQUEST))
    privacy_request_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("privacy_request.id", ondelete="RESTRICT"), nullable=False, unique=True
    )
    recorded_at: Mapped[datetime] = mapped_column(nullable=False)

    __table_args__ = (
        Index("ix_objection_account_id", "account_id"),
        Index("ix_objection_email_index", "email_index"),
    )


class SubjectRestriction(UUIDPrimaryKey, Base):
    """Privacy's own flag on a subject (AVG art. 18/21): their data is left out of processing
    beyond storage, and the consent look-up answers ``false`` for every purpose."""

    __tablename__ = "subject_restriction"

    account_id: Mapped[uuid.UUID | None] = mapped_column(
        info=kept_to_honour_objection(PiiCategory.ACCOUNT_IDENTIFIER)
    )
    email_index: Mapped[str | None] = mapped_column(
        String(64),
        info=kept_to_honour_objection(PiiCategory.PRIVACY_REQUEST, exportable=False),
    )
    basis: Mapped[str] = mapped_column(String(16), nullable=False)
    restricted: Mapped[bool] = mapped_column(Boolean, nullable=False)
    privacy_request_id: Mapped[uuid.UUID | None]
    """The request that last changed the flag (no foreign key: the internal subject API takes
    any caller's request id)."""
    changed_at: Mapped[datetime] = mapped_column(nullable=False)

    __table_args__ = (
        UniqueConstraint("account_id", "basis"),
        UniqueConstraint("email_index", "basis"),
    )


# --------------------------------------------------------------------------------------------
# Registers of the privacy officer
# --------------------------------------------------------------------------------------------


class Disclosure(UUIDPrimaryKey, Timestamps, Base):
    """A request by an authority for personal data, and what we decided."""

    __tablename__ = "disclosure"

    authority: Mapped[str] = mapped_column(String(32), nullable=False)
    authority_name: Mapped[str] = mapped_column(String(200), nullable=False)
    authority_reference: Mapped[str | None] = mapped_column(String(200))
    legal_basis: Mapped[str] = mapped_column(Text, nullable=False)
    requested_data: Mapped[str] = mapped_column(
        Text,
        nullable=False,
        info=kept_as_disclosure_record(),
    )
    subject_account_id: Mapped[uuid.UUID | None] = mapped_column(info=kept_as_disclosure_record())
    subject_email: Mapped[str | None] = mapped_column(
        String(254),
        info=kept_as_disclosure_record(),
    )
    subject_phone: Mapped[str | None] = mapped_column(
        String(32),
        info=kept_as_disclosure_record(),
    )
    categories: Mapped[list[Any]] = mapped_column(JSONType, nullable=False)
    received_at: Mapped[datetime] = mapped_column(nullable=False)
    powers_verified_by: Mapped[str] = mapped_column(
        String(64),
        nullable=False,
        info=kept_as_staff_record(),
    )
    powers_verification: Mapped[str] = mapped_column(Text, nullable=False)
    powers_verified_at: Mapped[datetime] = mapped_column(nullable=False)
    decision: Mapped[str] = mapped_column(String(16), nullable=False)
    decision_reason: Mapped[str | None] = mapped_column(
        Text,
        info=kept_as_disclosure_record(),
    )
    decided_by: Mapped[str | None] = mapped_column(
        String(64),
        info=kept_as_staff_record(),
    )
    decided_at: Mapped[datetime | None]
    created_by: Mapped[str] = mapped_column(
        String(64),
        nullable=False,
        info=kept_as_staff_record(),
    )

    __table_args__ = (Index("ix_disclosure_decision_id", "decision", "id"),)


class Incident(UUIDPrimaryKey, Timestamps, Base):
    """A personal data breach (AVG art. 33 and 34)."""

    __tablename__ = "incident"

    title: Mapped[str] = mapped_column(String(200), nullable=False)
    description: Mapped[str] = mapped_column(
        Text,
        nullable=False,
        info=kept_as_incident_record(),
    )
    occurred_at: Mapped[datetime | None]
    became_aware_at: Mapped[datetime] = mapped_column(nullable=False)
    ap_deadline: Mapped[datetime] = mapped_column(nullable=False)
    categories: Mapped[list[Any]] = mapped_column(JSONType, nullable=False)
    subjects_count: Mapped[int] = mapped_column(Integer, nullable=False)
    risk: Mapped[str] = mapped_column(String(16), nullable=False)
    risk_assessment: Mapped[str | None] = mapped_column(
        Text,
        info=kept_as_incident_record(),
    )
    measures: Mapped[str | None] = mapped_column(
        Text,
        info=kept_as_incident_record(),
    )
    ap_notified_at: Mapped[datetime | None]
    ap_reference: Mapped[str | None] = mapped_column(String(100))
    subjects_notified_at: Mapped[datetime | None]
    subjects_not_notified_reason: Mapped[str | None] = mapped_column(Text)
    closed_at: Mapped[datetime | None]
    overdue_flagged_at: Mapped[datetime | None]
    created_by: Mapped[str] = mapped_column(
        String(64),
        nullable=False,
        info=kept_as_staff_record(),
    )

    __table_args__ = (
        Index("ix_incident_ap_notified_at_ap_deadline", "ap_notified_at", "ap_deadline"),
    )


class AuditLog(UUIDPrimaryKey, Base):
    """What staff did in this service. Append-only: no code path updates an entry, and only the
    deadlines run deletes one, after ``audit_log_retention_days``; the database refuses every
    update and the deletion of an entry younger than a year (triggers in the migrations)."""

    __tablename__ = "audit_log"

    at: Mapped[datetime] = mapped_column(nullable=False)
    actor: Mapped[str] = mapped_column(
        String(128),
        nullable=False,
        info=kept_as_staff_record(),
    )
    actor_kind: Mapped[str] = mapped_column(String(16), nullable=False)
    actor_roles: Mapped[list[Any]] = mapped_column(JSONType, nullable=False)
    action: Mapped[str] = mapped_column(String(64), nullable=False)
    object_type: Mapped[str] = mapped_column(String(32), nullable=False)
    object_id: Mapped[str | None] = mapped_column(String(64))
    details: Mapped[dict[str, Any]] = mapped_column(
        JSONType,
        nullable=False,
        info=kept_as_staff_record(),
    )
    """Ids, reasons and field names of the action; never a subject's contact details."""
    http_request_id: Mapped[str | None] = mapped_column(String(128))

    __table_args__ = (
        Index("ix_audit_log_object_type_object_id", "object_type", "object_id"),
        Index("ix_audit_log_actor_id", "actor", "id"),
    )


class MailOutbox(UUIDPrimaryKey, Base):
    """Mail decided in a transaction and sent after it commits (at least once)."""

    __tablename__ = "mail_outbox"

    recipient: Mapped[str] = mapped_column(
        String(254),
        nullable=False,
        info=kept_as_correspondence(),
    )
    subject: Mapped[str] = mapped_column(
        String(200),
        nullable=False,
        info=kept_as_correspondence(),
    )
    body: Mapped[str] = mapped_column(
        Text,
        nullable=False,
        info=kept_as_correspondence(),
    )
    privacy_request_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("privacy_request.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(nullable=False)
    next_attempt_at: Mapped[datetime] = mapped_column(nullable=False)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_expires_at: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        Index("ix_mail_outbox_sent_at_next_attempt_at", "sent_at", "next_attempt_at"),
        Index("ix_mail_outbox_privacy_request_id", "privacy_request_id"),
    )


class SubjectCall(UUIDPrimaryKey, Base):
    """The answer privacy gave to an internal subject call, so a repeat with the same
    ``request_id`` gives the same answer and changes nothing more (decision 0004)."""

    __tablename__ = "subject_call"

    request_id: Mapped[uuid.UUID] = mapped_column(nullable=False)
    action: Mapped[str] = mapped_column(String(48), nullable=False)
    result: Mapped[dict[str, Any]] = mapped_column(JSONType, nullable=False)
    created_at: Mapped[datetime] = mapped_column(nullable=False)

    __table_args__ = (UniqueConstraint("request_id", "action"),)
