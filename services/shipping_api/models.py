"""Tables of shipping_api (schema ``shipping`` on PostgreSQL).

Every column holding personal data carries ``info=pii(...)``; export, erasure, restriction and
the retention purge are driven from those declarations (``libs/common/pii.py``).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from libs.common.db import TYPE_ANNOTATION_MAP, JSONType, UTCDateTime, UUIDPrimaryKey, new_metadata
from libs.common.idempotency import IdempotencyKeyMixin
from libs.common.pii import Erasure, PiiCategory, TableErasure, pii, table_info
from libs.common.request_log import RequestLogMixin

FISCAL_RETENTION = (
    "shipments are invoiced to the account holder; the fiscal retention obligation "
    "(AWR art. 52, 7 years) keeps which account a shipment was billed to"
)
ACCOUNTABILITY = "accountability for who accessed or recorded personal data (AVG art. 5(2))"
OBJECTION_KEPT = (
    "honours the restriction or objection for future shipments to the same address "
    "(AVG art. 18 and 21(3)); only a keyed hash is kept"
)


class Base(DeclarativeBase):
    metadata = new_metadata()
    type_annotation_map = TYPE_ANNOTATION_MAP


class RequestLog(RequestLogMixin, Base):
    """Requests of authenticated account holders to this service (privacy statement: Logs)."""

    __tablename__ = "request_log"


class IdempotencyKey(IdempotencyKeyMixin, Base):
    """Stored first responses of creates sent with an ``Idempotency-Key``."""

    __tablename__ = "idempotency_keys"


def _recipient(category: PiiCategory) -> dict[str, Any]:
    return pii(category)


class Shipment(UUIDPrimaryKey, Base):
    """One consignment of one or more parcels (multi-collo) from an account to a recipient."""

    __tablename__ = "shipments"

    account_id: Mapped[uuid.UUID] = mapped_column(
        nullable=False,
        info=pii(
            PiiCategory.ACCOUNT_IDENTIFIER,
            erasure=Erasure.RETAIN,
            retain_reason=FISCAL_RETENTION,
            retain_years=7,
        ),
    )
    mode: Mapped[str] = mapped_column(String(8), nullable=False)
    reference: Mapped[str | None] = mapped_column(
        String(100), info=pii(PiiCategory.SHIPMENT_DETAILS)
    )
    carrier: Mapped[str] = mapped_column(String(16), nullable=False)
    service: Mapped[str] = mapped_column(String(16), nullable=False)
    status: Mapped[str] = mapped_column(String(24), nullable=False)
    tracking_code: Mapped[str] = mapped_column(String(20), nullable=False, unique=True)
    parcel_count: Mapped[int] = mapped_column(Integer, nullable=False)
    price_cents: Mapped[int] = mapped_column(Integer, nullable=False)
    currency: Mapped[str] = mapped_column(String(3), nullable=False)

    # Privacy statement, "Verzend- & supportproces": the recipient's data.
    recipient_name: Mapped[str | None] = mapped_column(
        String(200), info=_recipient(PiiCategory.RECIPIENT_CONTACT)
    )
    recipient_contact_person: Mapped[str | None] = mapped_column(
        String(200), info=_recipient(PiiCategory.RECIPIENT_CONTACT)
    )
    recipient_street: Mapped[str | None] = mapped_column(
        String(200), info=_recipient(PiiCategory.RECIPIENT_ADDRESS)
    )
    recipient_house_number: Mapped[str | None] = mapped_column(
        String(16), info=_recipient(PiiCategory.RECIPIENT_ADDRESS)
    )
    recipient_postcode: Mapped[str | None] = mapped_column(
        String(12), info=_recipient(PiiCategory.RECIPIENT_ADDRESS)
    )
    recipient_city: Mapped[str | None] = mapped_column(
        String(100), info=_recipient(PiiCategory.RECIPIENT_ADDRESS)
    )
    recipient_country: Mapped[str | None] = mapped_column(
        String(2), info=_recipient(PiiCategory.RECIPIENT_ADDRESS)
    )
    recipient_email: Mapped[str | None] = mapped_column(
        String(254), info=_recipient(PiiCategory.RECIPIENT_CONTACT)
    )
    recipient_phone: Mapped[str | None] = mapped_column(
        String(32), info=_recipient(PiiCategory.RECIPIENT_CONTACT)
    )
    recipient_email_index: Mapped[str | None] = mapped_column(
        String(64), info=pii(PiiCategory.RECIPIENT_CONTACT, exportable=False)
    )
    """Keyed blind index (HMAC-SHA256) of the normalised e-mail: finds a recipient's shipments
    for a privacy request without scanning plaintext."""
    recipient_phone_index: Mapped[str | None] = mapped_column(
        String(64), info=pii(PiiCategory.RECIPIENT_CONTACT, exportable=False)
    )

    country_code: Mapped[str] = mapped_column(String(2), nullable=False)
    """Destination country, kept after erasure (statistics, price)."""
    postcode_area: Mapped[str | None] = mapped_column(String(4))
    """The first four characters of the postcode (a Dutch PC4 area): kept after erasure, so
    counts per area stay when names go."""
    is_restricted: Mapped[bool] = mapped_column(
        Boolean, nullable=False, default=False, server_default=text("false")
    )
    """The recipient or the account restricted or objected: out of reports and every message
    delivery does not strictly need."""

    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    status_changed_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    final_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    """When a final status was reached: the recipient retention period runs from here."""
    recipient_erased_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (
        Index("ix_shipments_account_id_id", "account_id", "id"),
        Index("ix_shipments_account_id_status_id", "account_id", "status", "id"),
        # Partial: an erasure nulls these columns, so an erased row needs no entry in them
        # (its update is not HOT and would otherwise write one into every index; 0703).
        Index(
            "ix_shipments_account_id_reference",
            "account_id",
            "reference",
            postgresql_where=text("reference IS NOT NULL"),
            sqlite_where=text("reference IS NOT NULL"),
        ),
        Index(
            "ix_shipments_recipient_email_index",
            "recipient_email_index",
            postgresql_where=text("recipient_email_index IS NOT NULL"),
            sqlite_where=text("recipient_email_index IS NOT NULL"),
        ),
        Index(
            "ix_shipments_recipient_phone_index",
            "recipient_phone_index",
            postgresql_where=text("recipient_phone_index IS NOT NULL"),
            sqlite_where=text("recipient_phone_index IS NOT NULL"),
        ),
        Index("ix_shipments_status_final_at", "status", "final_at"),
        # The purge walks it in (final_at, id) order, each batch after the last one's end.
        Index(
            "ix_shipments_retention_due_final_at_id",
            "final_at",
            "id",
            postgresql_where=text("recipient_erased_at IS NULL AND final_at IS NOT NULL"),
            sqlite_where=text("recipient_erased_at IS NULL AND final_at IS NOT NULL"),
        ),
        # ... and this one for shipments abandoned before a final status (0208): only those
        # still open and not erased, in (status_changed_at, id) order.
        Index(
            "ix_shipments_retention_abandoned_status_changed_at_id",
            "status_changed_at",
            "id",
            postgresql_where=text("recipient_erased_at IS NULL AND final_at IS NULL"),
            sqlite_where=text("recipient_erased_at IS NULL AND final_at IS NULL"),
        ),
    )


class Parcel(UUIDPrimaryKey, Base):
    """One collo of a shipment."""

    __tablename__ = "parcels"

    shipment_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("shipments.id", ondelete="CASCADE"), nullable=False
    )
    sequence: Mapped[int] = mapped_column(Integer, nullable=False)
    """1-based position: parcel ``sequence`` of ``parcel_count`` on the label."""
    weight_grams: Mapped[int] = mapped_column(Integer, nullable=False)
    length_cm: Mapped[int] = mapped_column(Integer, nullable=False)
    width_cm: Mapped[int] = mapped_column(Integer, nullable=False)
    height_cm: Mapped[int] = mapped_column(Integer, nullable=False)

    __table_args__ = (UniqueConstraint("shipment_id", "sequence"),)


class ShipmentEvent(UUIDPrimaryKey, Base):
    """A status change of a shipment: time, city-only location and description."""

    __tablename__ = "shipment_events"

    shipment_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("shipments.id", ondelete="CASCADE"), nullable=False
    )
    status: Mapped[str] = mapped_column(String(24), nullable=False)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    # The delivery scan's city is the recipient's city.
    city: Mapped[str | None] = mapped_column(String(100), info=pii(PiiCategory.RECIPIENT_ADDRESS))
    description: Mapped[str] = mapped_column(
        String(500), nullable=False, info=pii(PiiCategory.SHIPMENT_DETAILS, erasure=Erasure.REDACT)
    )
    source: Mapped[str] = mapped_column(String(16), nullable=False)
    """``api`` (label, cancel), ``carrier`` (pushed event) or ``simulation`` (sandbox)."""
    carrier: Mapped[str | None] = mapped_column(String(16))
    carrier_event_id: Mapped[str | None] = mapped_column(String(100))
    """The carrier's id of the event: a replayed push is recognised and ignored."""

    __table_args__ = (
        # A shipment's events are paged by (occurred_at, id): read in index order, no sort.
        Index("ix_shipment_events_shipment_id_occurred_at_id", "shipment_id", "occurred_at", "id"),
        UniqueConstraint("carrier", "carrier_event_id"),
    )


class SupportNote(UUIDPrimaryKey, Base):
    """A note of a call, e-mail or chat with support about a shipment (privacy statement:
    Klantenservice)."""

    __tablename__ = "support_notes"

    shipment_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("shipments.id", ondelete="CASCADE"), nullable=False
    )
    account_id: Mapped[uuid.UUID] = mapped_column(nullable=False)
    author_staff_id: Mapped[uuid.UUID] = mapped_column(
        nullable=False,
        info=pii(PiiCategory.STAFF, erasure=Erasure.RETAIN, retain_reason=ACCOUNTABILITY),
    )
    channel: Mapped[str] = mapped_column(String(16), nullable=False)
    body: Mapped[str] = mapped_column(
        Text, nullable=False, info=pii(PiiCategory.SUPPORT_CONTACT, erasure=Erasure.REDACT)
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)

    __table_args__ = (
        Index("ix_support_notes_shipment_id_id", "shipment_id", "id"),
        Index("ix_support_notes_account_id", "account_id"),
    )


class SupportAccess(UUIDPrimaryKey, Base):
    """Audit trail of staff reading an account's shipments: who, what, when and why."""

    __tablename__ = "support_access_log"

    staff_id: Mapped[uuid.UUID] = mapped_column(
        nullable=False,
        info=pii(PiiCategory.STAFF, erasure=Erasure.RETAIN, retain_reason=ACCOUNTABILITY),
    )
    action: Mapped[str] = mapped_column(String(32), nullable=False)
    account_id: Mapped[uuid.UUID | None] = mapped_column()
    shipment_id: Mapped[uuid.UUID | None] = mapped_column()
    reason: Mapped[str] = mapped_column(
        String(500), nullable=False, info=pii(PiiCategory.SUPPORT_CONTACT, erasure=Erasure.REDACT)
    )
    accessed_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)

    __table_args__ = (
        Index("ix_support_access_log_account_id_accessed_at", "account_id", "accessed_at"),
        Index("ix_support_access_log_shipment_id", "shipment_id"),
        Index("ix_support_access_log_staff_id_accessed_at", "staff_id", "accessed_at"),
    )


class WebhookEndpoint(UUIDPrimaryKey, Base):
    """A URL of an account that receives signed shipment events."""

    __tablename__ = "webhook_endpoints"

    account_id: Mapped[uuid.UUID] = mapped_column(nullable=False)
    url: Mapped[str] = mapped_column(
        String(2048), nullable=False, info=pii(PiiCategory.CONTACT, erasure=Erasure.REDACT)
    )
    description: Mapped[str | None] = mapped_column(String(200), info=pii(PiiCategory.CONTACT))
    events: Mapped[list[Any]] = mapped_column(JSONType, nullable=False)
    secret_ciphertext: Mapped[str | None] = mapped_column(
        String(200), info=pii(PiiCategory.CREDENTIALS, exportable=False)
    )
    """The signing secret, encrypted with the service's key (it is needed to sign, so it
    cannot be a hash); shown to the account once."""
    secret_hint: Mapped[str] = mapped_column(String(16), nullable=False)
    previous_secret_ciphertext: Mapped[str | None] = mapped_column(
        String(200), info=pii(PiiCategory.CREDENTIALS, exportable=False)
    )
    """The secret before the last rotation, sealed like the current one; deliveries are signed
    with it too until ``previous_secret_expires_at`` (decision 0206)."""
    previous_secret_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    is_active: Mapped[bool] = mapped_column(Boolean, nullable=False)
    failing_since: Mapped[datetime | None] = mapped_column(UTCDateTime())
    """The first failed delivery attempt since the last successful one; ``None`` while the
    last attempt succeeded. An endpoint failing for ``SHIPPING_WEBHOOK_DISABLE_AFTER_DAYS`` is
    switched off (decision 0206)."""
    disabled_reason: Mapped[str | None] = mapped_column(String(16))
    """Why the service switched the endpoint off (``failing``); ``None`` while it is on or
    when the account switched it off itself."""
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)

    __table_args__ = (
        Index("ix_webhook_endpoints_account_id_id", "account_id", "id"),
        # The retention job's lookup; only endpoints in a rotation have an entry.
        Index(
            "ix_webhook_endpoints_previous_secret_expires_at",
            "previous_secret_expires_at",
            postgresql_where=text("previous_secret_expires_at IS NOT NULL"),
            sqlite_where=text("previous_secret_expires_at IS NOT NULL"),
        ),
    )


class WebhookDelivery(UUIDPrimaryKey, Base):
    """The durable outbox of webhook deliveries, and the log the account sees."""

    __tablename__ = "webhook_deliveries"

    endpoint_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("webhook_endpoints.id", ondelete="CASCADE"), nullable=False
    )
    account_id: Mapped[uuid.UUID] = mapped_column(nullable=False)
    shipment_id: Mapped[uuid.UUID | None] = mapped_column()
    event: Mapped[str] = mapped_column(String(48), nullable=False)
    payload: Mapped[dict[str, Any] | None] = mapped_column(
        JSONType, info=pii(PiiCategory.SHIPMENT_DETAILS)
    )
    state: Mapped[str] = mapped_column(String(16), nullable=False)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    give_up_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(String(300))
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)

    __table_args__ = (
        Index("ix_webhook_deliveries_state_next_attempt_at", "state", "next_attempt_at"),
        Index("ix_webhook_deliveries_endpoint_id_id", "endpoint_id", "id"),
        Index("ix_webhook_deliveries_account_id_id", "account_id", "id"),
        Index("ix_webhook_deliveries_shipment_id", "shipment_id"),
        Index("ix_webhook_deliveries_created_at", "created_at"),
    )


class RecipientMail(UUIDPrimaryKey, Base):
    """The durable outbox of e-mails to recipients. It holds no personal data: the message
    is written at sending time from the shipment, so an erasure or restriction made in between
    is respected."""

    __tablename__ = "recipient_mail_outbox"

    shipment_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("shipments.id", ondelete="CASCADE"), nullable=False
    )
    status: Mapped[str] = mapped_column(String(24), nullable=False)
    """The shipment status this message is about."""
    state: Mapped[str] = mapped_column(String(16), nullable=False)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    give_up_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    last_error: Mapped[str | None] = mapped_column(String(300))
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)

    __table_args__ = (
        Index("ix_recipient_mail_outbox_state_next_attempt_at", "state", "next_attempt_at"),
        Index("ix_recipient_mail_outbox_shipment_id", "shipment_id"),
    )


class AccountNotice(UUIDPrimaryKey, Base):
    """The durable outbox of notices to account holders, which identity mails (decision 0206:
    a failing webhook endpoint was switched off). ``id`` is the notice's id at identity too, so
    a retry never mails twice. A row lives until identity has it, the account is gone or its
    window closes: then it is deleted, never kept."""

    __tablename__ = "account_notices"

    account_id: Mapped[uuid.UUID] = mapped_column(nullable=False)
    kind: Mapped[str] = mapped_column(String(48), nullable=False)
    payload: Mapped[dict[str, Any]] = mapped_column(
        JSONType, nullable=False, info=pii(PiiCategory.CONTACT)
    )
    """What the notice is about, as sent (the switched-off endpoint with its URL)."""
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    give_up_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    last_error: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)

    __table_args__ = (
        Index("ix_account_notices_account_id", "account_id"),
        Index("ix_account_notices_next_attempt_at", "next_attempt_at"),
        # An erasure of the account deletes its notices: nothing in them outlives it.
        {"info": table_info(TableErasure.DELETE)},
    )


class SubjectRestriction(UUIDPrimaryKey, Base):
    """A restriction (AVG art. 18) or objection (art. 21) by a subject, so that shipments made
    later for the same e-mail, phone or account are flagged too."""

    __tablename__ = "subject_restrictions"

    kind: Mapped[str] = mapped_column(String(8), nullable=False)
    """``email`` or ``phone`` (value is the blind index) or ``account`` (the account id)."""
    value: Mapped[str] = mapped_column(
        String(64),
        nullable=False,
        info=pii(
            PiiCategory.RECIPIENT_CONTACT, erasure=Erasure.RETAIN, retain_reason=OBJECTION_KEPT
        ),
    )
    basis: Mapped[str] = mapped_column(String(16), nullable=False)
    request_id: Mapped[str] = mapped_column(String(64), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)

    __table_args__ = (UniqueConstraint("kind", "value", "basis"),)


class SubjectRequestAnswer(UUIDPrimaryKey, Base):
    """Answers to privacy_api's data-subject calls, by request id: a retry gets the same
    answer and changes nothing more (decision 0004)."""

    __tablename__ = "subject_request_answers"

    request_id: Mapped[str] = mapped_column(String(64), nullable=False)
    action: Mapped[str] = mapped_column(String(16), nullable=False)
    answer: Mapped[dict[str, Any]] = mapped_column(JSONType, nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)

    __table_args__ = (UniqueConstraint("request_id", "action"),)
