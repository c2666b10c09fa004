"""shipments, parcels, events, support notes and access log, webhooks, outboxes, idempotency
keys, subject restrictions and answers

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import libs.common.db

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "idempotency_keys",
        sa.Column("scope", sa.String(length=64), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("locked_until", libs.common.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("response_status", sa.Integer(), nullable=True),
        sa.Column("response_media_type", sa.String(length=100), nullable=True),
        sa.Column("response_location", sa.String(length=2048), nullable=True),
        sa.Column("resource_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", libs.common.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", libs.common.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("response_body", sa.Text(), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_idempotency_keys")),
        sa.UniqueConstraint("scope", "key", name="uq_idempotency_keys_scope_key"),
    )
    op.create_index(
        "ix_idempotency_keys_expires_at", "idempotency_keys", ["expires_at"], unique=False
    )
    op.create_index(
        "ix_idempotency_keys_resource_id", "idempotency_keys", ["resource_id"], unique=False
    )
    op.create_table(
        "shipments",
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("mode", sa.String(length=8), nullable=False),
        sa.Column("reference", sa.String(length=100), nullable=True),
        sa.Column("carrier", sa.String(length=16), nullable=False),
        sa.Column("service", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("tracking_code", sa.String(length=20), nullable=False),
        sa.Column("parcel_count", sa.Integer(), nullable=False),
        sa.Column("price_cents", sa.Integer(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("recipient_name", sa.String(length=200), nullable=True),
        sa.Column("recipient_contact_person", sa.String(length=200), nullable=True),
        sa.Column("recipient_street", sa.String(length=200), nullable=True),
        sa.Column("recipient_house_number", sa.String(length=16), nullable=True),
        sa.Column("recipient_postcode", sa.String(length=12), nullable=True),
        sa.Column("recipient_city", sa.String(length=100), nullable=True),
        sa.Column("recipient_country", sa.String(length=2), nullable=True),
        sa.Column("recipient_email", sa.String(length=254), nullable=True),
        sa.Column("recipient_phone", sa.String(length=32), nullable=True),
        sa.Column("recipient_email_index", sa.String(length=64), nullable=True),
        sa.Column("recipient_phone_index", sa.String(length=64), nullable=True),
        sa.Column("country_code", sa.String(length=2), nullable=False),
        sa.Column("postcode_area", sa.String(length=4), nullable=True),
        sa.Column("is_restricted", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("created_at", libs.common.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", libs.common.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("status_changed_at", libs.common.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("final_at", libs.common.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("recipient_erased_at", libs.common.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shipments")),
        sa.UniqueConstraint("tracking_code", name=op.f("uq_shipments_tracking_code")),
    )
    op.create_index("ix_shipments_account_id_id", "shipments", ["account_id", "id"], unique=False)
    op.create_index(
        "ix_shipments_account_id_reference", "shipments", ["account_id", "reference"], unique=False
    )
    op.create_index(
        "ix_shipments_account_id_status_id",
        "shipments",
        ["account_id", "status", "id"],
        unique=False,
    )
    op.create_index(
        "ix_shipments_recipient_email_index", "shipments", ["recipient_email_index"], unique=False
    )
    op.create_index(
        "ix_shipments_recipient_phone_index", "shipments", ["recipient_phone_index"], unique=False
    )
    op.create_index(
        "ix_shipments_retention_due",
        "shipments",
        ["final_at"],
        unique=False,
        postgresql_where=sa.text("recipient_erased_at IS NULL AND final_at IS NOT NULL"),
        sqlite_where=sa.text("recipient_erased_at IS NULL AND final_at IS NOT NULL"),
    )
    op.create_index(
        "ix_shipments_status_final_at", "shipments", ["status", "final_at"], unique=False
    )
    op.create_table(
        "subject_request_answers",
        sa.Column("request_id", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column(
            "answer",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", libs.common.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subject_request_answers")),
        sa.UniqueConstraint(
            "request_id", "action", name=op.f("uq_subject_request_answers_request_id_action")
        ),
    )
    op.create_table(
        "subject_restrictions",
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("value", sa.String(length=64), nullable=False),
        sa.Column("basis", sa.String(length=16), nullable=False),
        sa.Column("request_id", sa.String(length=64), nullable=False),
        sa.Column("created_at", libs.common.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subject_restrictions")),
        sa.UniqueConstraint(
            "kind", "value", "basis", name=op.f("uq_subject_restrictions_kind_value_basis")
        ),
    )
    op.create_table(
        "support_access_log",
        sa.Column("staff_id", sa.Uuid(), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("account_id", sa.Uuid(), nullable=True),
        sa.Column("shipment_id", sa.Uuid(), nullable=True),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("accessed_at", libs.common.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_support_access_log")),
    )
    op.create_index(
        "ix_support_access_log_account_id_accessed_at",
        "support_access_log",
        ["account_id", "accessed_at"],
        unique=False,
    )
    op.create_index(
        "ix_support_access_log_shipment_id", "support_access_log", ["shipment_id"], unique=False
    )
    op.create_index(
        "ix_support_access_log_staff_id_accessed_at",
        "support_access_log",
        ["staff_id", "accessed_at"],
        unique=False,
    )
    op.create_table(
        "webhook_endpoints",
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("url", sa.String(length=2048), nullable=False),
        sa.Column("description", sa.String(length=200), nullable=True),
        sa.Column(
            "events",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("secret_ciphertext", sa.String(length=200), nullable=True),
        sa.Column("secret_hint", sa.String(length=16), nullable=False),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("created_at", libs.common.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", libs.common.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_endpoints")),
    )
    op.create_index(
        "ix_webhook_endpoints_account_id_id",
        "webhook_endpoints",
        ["account_id", "id"],
        unique=False,
    )
    op.create_table(
        "parcels",
        sa.Column("shipment_id", sa.Uuid(), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("weight_grams", sa.Integer(), nullable=False),
        sa.Column("length_cm", sa.Integer(), nullable=False),
        sa.Column("width_cm", sa.Integer(), nullable=False),
        sa.Column("height_cm", sa.Integer(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["shipment_id"],
            ["shipments.id"],
            name=op.f("fk_parcels_shipment_id_shipments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_parcels")),
        sa.UniqueConstraint(
            "shipment_id", "sequence", name=op.f("uq_parcels_shipment_id_sequence")
        ),
    )
    op.create_table(
        "recipient_mail_outbox",
        sa.Column("shipment_id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", libs.common.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("give_up_at", libs.common.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_error", sa.String(length=300), nullable=True),
        sa.Column("sent_at", libs.common.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", libs.common.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["shipment_id"],
            ["shipments.id"],
            name=op.f("fk_recipient_mail_outbox_shipment_id_shipments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recipient_mail_outbox")),
    )
    op.create_index(
        "ix_recipient_mail_outbox_shipment_id",
        "recipient_mail_outbox",
        ["shipment_id"],
        unique=False,
    )
    op.create_index(
        "ix_recipient_mail_outbox_state_next_attempt_at",
        "recipient_mail_outbox",
        ["state", "next_attempt_at"],
        unique=False,
    )
    op.create_table(
        "shipment_events",
        sa.Column("shipment_id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("occurred_at", libs.common.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("recorded_at", libs.common.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("city", sa.String(length=100), nullable=True),
        sa.Column("description", sa.String(length=500), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("carrier", sa.String(length=16), nullable=True),
        sa.Column("carrier_event_id", sa.String(length=100), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["shipment_id"],
            ["shipments.id"],
            name=op.f("fk_shipment_events_shipment_id_shipments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shipment_events")),
        sa.UniqueConstraint(
            "carrier", "carrier_event_id", name=op.f("uq_shipment_events_carrier_carrier_event_id")
        ),
    )
    op.create_index(
        "ix_shipment_events_shipment_id_occurred_at",
        "shipment_events",
        ["shipment_id", "occurred_at"],
        unique=False,
    )
    op.create_table(
        "support_notes",
        sa.Column("shipment_id", sa.Uuid(), nullable=False),
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("author_staff_id", sa.Uuid(), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", libs.common.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["shipment_id"],
            ["shipments.id"],
            name=op.f("fk_support_notes_shipment_id_shipments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_support_notes")),
    )
    op.create_index("ix_support_notes_account_id", "support_notes", ["account_id"], unique=False)
    op.create_index(
        "ix_support_notes_shipment_id_id", "support_notes", ["shipment_id", "id"], unique=False
    )
    op.create_table(
        "webhook_deliveries",
        sa.Column("endpoint_id", sa.Uuid(), nullable=False),
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("shipment_id", sa.Uuid(), nullable=True),
        sa.Column("event", sa.String(length=48), nullable=False),
        sa.Column(
            "payload",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", libs.common.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("give_up_at", libs.common.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_attempt_at", libs.common.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_status_code", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.String(length=300), nullable=True),
        sa.Column("delivered_at", libs.common.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", libs.common.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["endpoint_id"],
            ["webhook_endpoints.id"],
            name=op.f("fk_webhook_deliveries_endpoint_id_webhook_endpoints"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_deliveries")),
    )
    op.create_index(
        "ix_webhook_deliveries_account_id_id",
        "webhook_deliveries",
        ["account_id", "id"],
        unique=False,
    )
    op.create_index(
        "ix_webhook_deliveries_created_at", "webhook_deliveries", ["created_at"], unique=False
    )
    op.create_index(
        "ix_webhook_deliveries_endpoint_id_id",
        "webhook_deliveries",
        ["endpoint_id", "id"],
        unique=False,
    )
    op.create_index(
        "ix_webhook_deliveries_shipment_id", "webhook_deliveries", ["shipment_id"], unique=False
    )
    op.create_index(
        "ix_webhook_deliveries_state_next_attempt_at",
        "webhook_deliveries",
        ["state", "next_attempt_at"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_webhook_deliveries_state_next_attempt_at", table_name="webhook_deliveries")
    op.drop_index("ix_webhook_deliveries_shipment_id", table_name="webhook_deliveries")
    op.drop_index("ix_webhook_deliveries_endpoint_id_id", table_name="webhook_deliveries")
    op.drop_index("ix_webhook_deliveries_created_at", table_name="webhook_deliveries")
    op.drop_index("ix_webhook_deliveries_account_id_id", table_name="webhook_deliveries")
    op.drop_table("webhook_deliveries")
    op.drop_index("ix_support_notes_shipment_id_id", table_name="support_notes")
    op.drop_index("ix_support_notes_account_id", table_name="support_notes")
    op.drop_table("support_notes")
    op.drop_index("ix_shipment_events_shipment_id_occurred_at", table_name="shipment_events")
    op.drop_table("shipment_events")
    op.drop_index(
        "ix_recipient_mail_outbox_state_next_attempt_at", table_name="recipient_mail_outbox"
    )
    op.drop_index("ix_recipient_mail_outbox_shipment_id", table_name="recipient_mail_outbox")
    op.drop_table("recipient_mail_outbox")
    op.drop_table("parcels")
    op.drop_index("ix_webhook_endpoints_account_id_id", table_name="webhook_endpoints")
    op.drop_table("webhook_endpoints")
    op.drop_index("ix_support_access_log_staff_id_accessed_at", table_name="support_access_log")
    op.drop_index("ix_support_access_log_shipment_id", table_name="support_access_log")
    op.drop_index("ix_support_access_log_account_id_accessed_at", table_name="support_access_log")
    op.drop_table("support_access_log")
    op.drop_table("subject_restrictions")
    op.drop_table("subject_request_answers")
    op.drop_index("ix_shipments_status_final_at", table_name="shipments")
    op.drop_index(
        "ix_shipments_retention_due",
        table_name="shipments",
        postgresql_where=sa.text("recipient_erased_at IS NULL AND final_at IS NOT NULL"),
        sqlite_where=sa.text("recipient_erased_at IS NULL AND final_at IS NOT NULL"),
    )
    op.drop_index("ix_shipments_recipient_phone_index", table_name="shipments")
    op.drop_index("ix_shipments_recipient_email_index", table_name="shipments")
    op.drop_index("ix_shipments_account_id_status_id", table_name="shipments")
    op.drop_index("ix_shipments_account_id_reference", table_name="shipments")
    op.drop_index("ix_shipments_account_id_id", table_name="shipments")
    op.drop_table("shipments")
    op.drop_index("ix_idempotency_keys_resource_id", table_name="idempotency_keys")
    op.drop_index("ix_idempotency_keys_expires_at", table_name="idempotency_keys")
    op.drop_table("idempotency_keys")
