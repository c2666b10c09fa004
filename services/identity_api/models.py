"""Tables of identity_api (schema ``identity`` on PostgreSQL).

Every column holding personal data carries ``info=pii(...)``; the data-subject endpoints
(``subjects/``) export and erase from these declarations.
"""

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
    func,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from libs.common.db import (
    TYPE_ANNOTATION_MAP,
    Timestamps,
    UTCDateTime,
    UUIDPrimaryKey,
    new_metadata,
    utcnow,
    uuid7,
)
from libs.common.idempotency import IdempotencyKeyMixin
from libs.common.notices import NoticeKind
from libs.common.pii import Erasure, PiiCategory, TableErasure, pii, table_info
from libs.common.request_log import RequestLogMixin

# Dutch fiscal retention obligation: books and records, including the debtor administration,
# are kept for seven years (Algemene wet inzake rijksbelastingen art. 52(4)).
FISCAL_REASON = "fiscal retention obligation (AWR art. 52(4)): the debtor administration is kept"
FISCAL_YEARS = 7
ACCOUNTABILITY_REASON = (
    "accountability for staff access to personal data (AVG art. 5(2) and 32): who read what, why"
)


class Base(DeclarativeBase):
    metadata = new_metadata()
    type_annotation_map = TYPE_ANNOTATION_MAP


def _fiscal(category: PiiCategory) -> dict[str, Any]:
    return pii(
        category, erasure=Erasure.RETAIN, retain_reason=FISCAL_REASON, retain_years=FISCAL_YEARS
    )


def _accountability(category: PiiCategory) -> dict[str, Any]:
    return pii(
        category,
        erasure=Erasure.RETAIN,
        retain_reason=ACCOUNTABILITY_REASON,
        retain_years=FISCAL_YEARS,
    )


class RequestLog(RequestLogMixin, Base):
    """Requests of authenticated account holders to this service (privacy statement: Logs)."""

    __tablename__ = "request_log"


class IdempotencyKey(IdempotencyKeyMixin, Base):
    """Stored first answers of ``POST /v1/api-keys`` sent with an ``Idempotency-Key``, the
    secret left out: it is shown once and stored only as a hash (decision 0107)."""

    __tablename__ = "idempotency_keys"

    response_pii_category = PiiCategory.USAGE
    """The key's name, as on ``api_keys.name``."""


class DebtorNumberCounter(Base):
    """One row holding the last debtor number handed out.

    ``UPDATE ... RETURNING`` on this row is atomic on PostgreSQL (row lock until commit) and on
    SQLite (``BEGIN IMMEDIATE``), so numbers are unique and, since a failed registration rolls
    the counter back with it, without gaps.
    """

    __tablename__ = "debtor_number_counter"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    last_value: Mapped[int] = mapped_column(Integer, nullable=False)


class Account(Timestamps, Base):
    """An account holder: exactly the fields the privacy statement lists under
    'Authenticatie, verzending, facturatie & betaling'."""

    __tablename__ = "accounts"
    __table_args__ = (
        Index("ix_accounts_phone", "phone"),
        Index("ix_accounts_retain_until", "retain_until"),
    )

    id: Mapped[uuid.UUID] = mapped_column(
        primary_key=True,
        default=uuid7,
        info=pii(
            PiiCategory.ACCOUNT_IDENTIFIER,
            erasure=Erasure.RETAIN,
            retain_reason=FISCAL_REASON,
            retain_years=FISCAL_YEARS,
        ),
    )
    email: Mapped[str | None] = mapped_column(String(254), info=pii(PiiCategory.CONTACT))
    password_hash: Mapped[str | None] = mapped_column(
        String(255), info=pii(PiiCategory.CREDENTIALS, exportable=False)
    )
    debtor_number: Mapped[str] = mapped_column(
        String(16), nullable=False, unique=True, info=_fiscal(PiiCategory.ACCOUNT_IDENTIFIER)
    )
    name: Mapped[str] = mapped_column(
        String(200), nullable=False, info=_fiscal(PiiCategory.CONTACT)
    )
    contact_person: Mapped[str | None] = mapped_column(String(200), info=pii(PiiCategory.CONTACT))
    postcode: Mapped[str] = mapped_column(
        String(12), nullable=False, info=_fiscal(PiiCategory.ADDRESS)
    )
    house_number: Mapped[str] = mapped_column(
        String(16), nullable=False, info=_fiscal(PiiCategory.ADDRESS)
    )
    street: Mapped[str] = mapped_column(
        String(200), nullable=False, info=_fiscal(PiiCategory.ADDRESS)
    )
    city: Mapped[str] = mapped_column(
        String(100), nullable=False, info=_fiscal(PiiCategory.ADDRESS)
    )
    country: Mapped[str] = mapped_column(
        String(2), nullable=False, info=_fiscal(PiiCategory.ADDRESS)
    )
    kvk_number: Mapped[str | None] = mapped_column(
        String(12), info=_fiscal(PiiCategory.BUSINESS_IDENTIFIERS)
    )
    iban_encrypted: Mapped[str | None] = mapped_column(String(255), info=pii(PiiCategory.FINANCIAL))
    """AES-GCM sealed IBAN with its key id (``libs.common.crypto.FieldCipher``)."""
    account_holder: Mapped[str | None] = mapped_column(String(200), info=pii(PiiCategory.FINANCIAL))
    phone: Mapped[str | None] = mapped_column(String(32), info=pii(PiiCategory.CONTACT))
    website: Mapped[str | None] = mapped_column(String(255), info=pii(PiiCategory.CONTACT))
    vat_number: Mapped[str | None] = mapped_column(
        String(20), info=_fiscal(PiiCategory.BUSINESS_IDENTIFIERS)
    )

    email_verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    processing_restricted: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    """AVG art. 18: kept, but left out of analytics, reports, profiling and marketing mail."""
    processing_objected: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    """AVG art. 21: the same effect, on the basis of an objection."""
    erased_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    retain_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    """After an erasure: when the fiscally retained fields may go too."""

    @property
    def is_restricted(self) -> bool:
        return self.processing_restricted or self.processing_objected

    @property
    def is_active(self) -> bool:
        return self.erased_at is None


class StaffRole(StrEnum):
    SUPPORT = "support"
    PRIVACY_OFFICER = "privacy_officer"
    ADMIN = "admin"


class StaffUser(UUIDPrimaryKey, Timestamps, Base):
    """A Parcel Pro employee with access to the back office (employee data, not customers')."""

    __tablename__ = "staff_users"

    email: Mapped[str] = mapped_column(String(254), nullable=False, info=pii(PiiCategory.STAFF))
    name: Mapped[str | None] = mapped_column(String(200), info=pii(PiiCategory.STAFF))
    password_hash: Mapped[str] = mapped_column(
        String(255), nullable=False, info=pii(PiiCategory.CREDENTIALS, exportable=False)
    )
    role: Mapped[StaffRole] = mapped_column(String(32), nullable=False)
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    @property
    def is_active(self) -> bool:
        return self.disabled_at is None


# Case-insensitive uniqueness of e-mail addresses (an erased account's e-mail is NULL).
Index("uq_accounts_email_lower", func.lower(Account.email), unique=True)
Index("uq_staff_users_email_lower", func.lower(StaffUser.email), unique=True)


class SubjectKind(StrEnum):
    USER = "user"
    STAFF = "staff"


class RefreshToken(UUIDPrimaryKey, Base):
    """An opaque refresh token, stored only as a keyed hash. Tokens of one login form a
    family; presenting a token that was already rotated revokes the whole family."""

    __tablename__ = "refresh_tokens"
    __table_args__ = (
        Index("ix_refresh_tokens_family_id", "family_id"),
        Index("ix_refresh_tokens_account_id", "account_id"),
        Index("ix_refresh_tokens_staff_id", "staff_id"),
        Index("ix_refresh_tokens_expires_at", "expires_at"),
        {"info": table_info(TableErasure.DELETE)},
    )

    family_id: Mapped[uuid.UUID] = mapped_column(nullable=False)
    subject_kind: Mapped[SubjectKind] = mapped_column(String(16), nullable=False)
    account_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), info=pii(PiiCategory.ACCOUNT_IDENTIFIER)
    )
    staff_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("staff_users.id", ondelete="CASCADE"), info=pii(PiiCategory.STAFF)
    )
    token_hash: Mapped[str] = mapped_column(
        String(64), nullable=False, unique=True, info=pii(PiiCategory.CREDENTIALS, exportable=False)
    )
    scope: Mapped[str] = mapped_column(String(255), nullable=False)
    """The scopes the login was granted, space-separated; every rotation passes on these."""
    authenticated_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    """When the login that started the family happened; the family ends
    ``IDENTITY_REFRESH_FAMILY_MAX_DAYS`` later, however often it is rotated."""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    rotated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class SigningKey(Base):
    """An Ed25519 key that signs access tokens; published in the JWKS from ``created_at``,
    signing from ``activates_at``, unpublished after ``retires_at``."""

    __tablename__ = "signing_keys"
    __table_args__ = (Index("ix_signing_keys_activates_at", "activates_at"),)

    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    algorithm: Mapped[str] = mapped_column(String(16), nullable=False)
    public_key: Mapped[str] = mapped_column(Text, nullable=False)
    """Raw public key, base64url (the JWK ``x``)."""
    private_key_encrypted: Mapped[str] = mapped_column(Text, nullable=False)
    """Raw private key, sealed with the field-encryption key."""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
    activates_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    retires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class ApiKeyMode(StrEnum):
    LIVE = "live"
    TEST = "test"


class ApiKey(UUIDPrimaryKey, Base):
    """A partner webshop's API key: ``pp_<mode>_<prefix>_<secret>``, stored as a keyed hash."""

    __tablename__ = "api_keys"
    __table_args__ = (
        Index("ix_api_keys_account_id_id", "account_id", "id"),
        {"info": table_info(TableErasure.DELETE)},
    )

    account_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"),
        nullable=False,
        info=pii(PiiCategory.ACCOUNT_IDENTIFIER),
    )
    name: Mapped[str] = mapped_column(String(100), nullable=False, info=pii(PiiCategory.USAGE))
    prefix: Mapped[str] = mapped_column(String(16), nullable=False, unique=True)
    secret_hash: Mapped[str | None] = mapped_column(
        String(64), info=pii(PiiCategory.CREDENTIALS, exportable=False)
    )
    mode: Mapped[ApiKeyMode] = mapped_column(String(8), nullable=False)
    scopes: Mapped[list[Any]] = mapped_column(nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class SecurityEventType(StrEnum):
    REGISTERED = "registered"
    LOGIN_SUCCEEDED = "login_succeeded"
    LOGIN_FAILED = "login_failed"
    LOGIN_THROTTLED = "login_throttled"
    LOGGED_OUT = "logged_out"
    REFRESH_TOKEN_REUSED = "refresh_token_reused"  # noqa: S105 - a name, not a secret
    PASSWORD_CHANGED = "password_changed"  # noqa: S105 - a name, not a secret
    PASSWORD_RESET_REQUESTED = "password_reset_requested"  # noqa: S105 - a name, not a secret
    PASSWORD_RESET = "password_reset"  # noqa: S105 - a name, not a secret
    PASSWORD_HASH_UPGRADED = "password_hash_upgraded"  # noqa: S105 - a name, not a secret
    EMAIL_VERIFIED = "email_verified"
    EMAIL_CHANGED = "email_changed"
    ACCOUNT_UPDATED = "account_updated"
    API_KEY_CREATED = "api_key_created"
    API_KEY_REVOKED = "api_key_revoked"


class SecurityEvent(UUIDPrimaryKey, Base):
    """What happened to an account's security, readable by the account holder."""

    __tablename__ = "security_events"
    __table_args__ = (
        Index("ix_security_events_account_id_id", "account_id", "id"),
        {"info": table_info(TableErasure.DELETE)},
    )

    account_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"),
        nullable=False,
        info=pii(PiiCategory.ACCOUNT_IDENTIFIER),
    )
    type: Mapped[SecurityEventType] = mapped_column(
        String(40), nullable=False, info=pii(PiiCategory.SECURITY_EVENTS)
    )
    ip: Mapped[str | None] = mapped_column(String(45), info=pii(PiiCategory.NETWORK))
    user_agent: Mapped[str | None] = mapped_column(String(300), info=pii(PiiCategory.USAGE))
    details: Mapped[dict[str, Any]] = mapped_column(
        nullable=False, default=dict, info=pii(PiiCategory.SECURITY_EVENTS)
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)


class MailTokenPurpose(StrEnum):
    VERIFY_EMAIL = "verify_email"
    RESET_PASSWORD = "reset_password"  # noqa: S105 - a name, not a secret


class MailToken(UUIDPrimaryKey, Base):
    """A single-use, expiring token sent by e-mail (verification, password reset)."""

    __tablename__ = "mail_tokens"
    __table_args__ = (
        Index("ix_mail_tokens_account_id_purpose", "account_id", "purpose"),
        Index("ix_mail_tokens_expires_at", "expires_at"),
        {"info": table_info(TableErasure.DELETE)},
    )

    account_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"),
        nullable=False,
        info=pii(PiiCategory.ACCOUNT_IDENTIFIER),
    )
    purpose: Mapped[MailTokenPurpose] = mapped_column(String(32), nullable=False)
    token_hash: Mapped[str] = mapped_column(
        String(64), nullable=False, unique=True, info=pii(PiiCategory.CREDENTIALS, exportable=False)
    )
    email: Mapped[str] = mapped_column(String(254), nullable=False, info=pii(PiiCategory.CONTACT))
    """The address the token was sent to (verification proves this address)."""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class OutboxMail(UUIDPrimaryKey, Base):
    """Mail waiting to be delivered: written in the request's transaction, sent (and retried)
    by a background task, deleted once delivered."""

    __tablename__ = "mail_outbox"
    __table_args__ = (
        Index("ix_mail_outbox_sent_at_next_attempt_at", "sent_at", "next_attempt_at"),
        # An account's export and erasure, and the cascade of its deletion.
        Index("ix_mail_outbox_account_id_id", "account_id", "id"),
        {"info": table_info(TableErasure.DELETE)},
    )

    account_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), info=pii(PiiCategory.ACCOUNT_IDENTIFIER)
    )
    to_address: Mapped[str] = mapped_column(
        String(254), nullable=False, info=pii(PiiCategory.CONTACT)
    )
    subject: Mapped[str] = mapped_column(String(200), nullable=False)
    body_text: Mapped[str] = mapped_column(
        Text, nullable=False, info=pii(PiiCategory.CREDENTIALS, exportable=False)
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    failed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(String(500))


class AccountNoticeRecord(Base):
    """A notice another service asked identity to mail an account holder, kept under the
    sender's id so that a retried call mails nothing twice; purged after 30 days."""

    __tablename__ = "account_notices"
    __table_args__ = (
        Index("ix_account_notices_account_id", "account_id"),
        Index("ix_account_notices_accepted_at", "accepted_at"),
        {"info": table_info(TableErasure.DELETE)},
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    """The sending service's id of the notice."""
    account_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"),
        nullable=False,
        info=pii(PiiCategory.ACCOUNT_IDENTIFIER),
    )
    kind: Mapped[NoticeKind] = mapped_column(String(64), nullable=False)
    accepted_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)


class StaffAccessLog(UUIDPrimaryKey, Base):
    """Every staff read of an account holder's personal data: who, what, when and why."""

    __tablename__ = "staff_access_log"
    __table_args__ = (
        Index("ix_staff_access_log_account_id_id", "account_id", "id"),
        Index("ix_staff_access_log_staff_id_id", "staff_id", "id"),
    )

    staff_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("staff_users.id"), nullable=False, info=_accountability(PiiCategory.STAFF)
    )
    account_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"),
        info=_accountability(PiiCategory.ACCOUNT_IDENTIFIER),
    )
    action: Mapped[str] = mapped_column(String(64), nullable=False)
    fields: Mapped[list[Any]] = mapped_column(nullable=False)
    query: Mapped[str | None] = mapped_column(String(300), info=pii(PiiCategory.CONTACT))
    """What was searched for (e.g. an e-mail address), when the read was a search."""
    reason: Mapped[str] = mapped_column(
        String(500), nullable=False, info=_accountability(PiiCategory.STAFF)
    )
    """Free text by the staff member; may name the account holder."""
    ip: Mapped[str | None] = mapped_column(String(45), info=_accountability(PiiCategory.STAFF))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)


class SubjectRequestResult(Base):
    """Answers of data-subject calls, so a retry with the same request id changes nothing."""

    __tablename__ = "subject_request_results"
    __table_args__ = (UniqueConstraint("request_id", "operation"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid7)
    request_id: Mapped[str] = mapped_column(String(128), nullable=False)
    operation: Mapped[str] = mapped_column(String(32), nullable=False)
    response: Mapped[dict[str, Any]] = mapped_column(nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
