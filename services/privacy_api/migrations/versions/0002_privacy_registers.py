"""privacy: requests and their tasks, consents, objections and restrictions, the disclosure and
breach registers, the append-only audit log, the mail outbox

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

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")

# The audit log is append-only (AVG art. 5(2): accountability): the database itself refuses
# to change or remove an entry, whatever the application does.
PG_APPEND_ONLY = [
    """
    CREATE FUNCTION audit_log_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP
            USING ERRCODE = 'insufficient_privilege';
    END;
    $$
    """,
    """
    CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_is_append_only()
    """,
    """
    CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_is_append_only()
    """,
]
SQLITE_APPEND_ONLY = [
    """
    CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
    BEGIN SELECT RAISE(ABORT, 'audit_log is append-only: UPDATE refused'); END
    """,
    """
    CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
    BEGIN SELECT RAISE(ABORT, 'audit_log is append-only: DELETE refused'); END
    """,
]


def upgrade() -> None:
    op.create_table(
        "audit_log",
        sa.Column("at", libs.common.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("actor_kind", sa.String(length=16), nullable=False),
        sa.Column("actor_roles", JSON, nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("object_type", sa.String(length=32), nullable=False),
        sa.Column("object_id", sa.String(length=64), nullable=True),
        sa.Column("details", JSON, nullable=False),
        sa.Column("http_request_id", sa.String(length=128), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    op.create_index("ix_audit_log_actor_id", "audit_log", ["actor", "id"])
    op.create_index("ix_audit_log_object_type_object_id", "audit_log", ["object_type", "object_id"])
    op.create_table(
        "consent",
        sa.Column("account_id", sa.Uuid(), nullable=True),
        sa.Column("email_index", sa.String(length=64), nullable=True),
        sa.Column("purpose", sa.String(length=32), nullable=False),
        sa.Column("granted", sa.Boolean(), nullable=False),
        sa.Column("text_version", sa.String(length=32), nullable=True),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("changed_at", libs.common.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consent")),
        sa.UniqueConstraint("account_id", "purpose", name=op.f("uq_consent_account_id_purpose")),
        sa.UniqueConstraint("email_index", "purpose", name=op.f("uq_consent_email_index_purpose")),
    )
    op.create_table(
        "disclosure",
        sa.Column("authority", sa.String(length=32), nullable=False),
        sa.Column("authority_name", sa.String(length=200), nullable=False),
        sa.Column("authority_reference", sa.String(length=200), nullable=True),
        sa.Column("legal_basis", sa.Text(), nullable=False),
        sa.Column("requested_data", sa.Text(), nullable=False),
        sa.Column("subject_account_id", sa.Uuid(), nullable=True),
        sa.Column("subject_email", sa.String(length=254), nullable=True),
        sa.Column("subject_phone", sa.String(length=32), nullable=True),
        sa.Column("categories", JSON, nullable=False),
        sa.Column("received_at", libs.common.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("powers_verified_by", sa.String(length=64), nullable=False),
        sa.Column("powers_verification", sa.Text(), nullable=False),
        sa.Column("powers_verified_at", libs.common.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("decision", sa.String(length=16), nullable=False),
        sa.Column("decision_reason", sa.Text(), nullable=True),
        sa.Column("decided_by", sa.String(length=64), nullable=True),
        sa.Column("decided_at", libs.common.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", libs.common.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", libs.common.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_disclosure")),
    )
    op.create_index("ix_disclosure_decision_id", "disclosure", ["decision", "id"])
    op.create_table(
        "incident",
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("occurred_at", libs.common.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("became_aware_at", libs.common.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("ap_deadline", libs.common.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("categories", JSON, nullable=False),
        sa.Column("subjects_count", sa.Integer(), nullable=False),
        sa.Column("risk", sa.String(length=16), nullable=False),
        sa.Column("risk_assessment", sa.Text(), nullable=True),
        sa.Column("measures", sa.Text(), nullable=True),
        sa.Column("ap_notified_at", libs.common.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("ap_reference", sa.String(length=100), nullable=True),
        sa.Column("subjects_notified_at", libs.common.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("subjects_not_notified_reason", sa.Text(), nullable=True),
        sa.Column("closed_at", libs.common.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("overdue_flagged_at", libs.common.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", libs.common.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", libs.common.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_incident")),
    )
    op.create_index(
        "ix_incident_ap_notified_at_ap_deadline", "incident", ["ap_notified_at", "ap_deadline"]
    )
    op.create_table(
        "subject_call",
        sa.Column("request_id", sa.Uuid(), nullable=False),
        sa.Column("action", sa.String(length=48), nullable=False),
        sa.Column("result", JSON, nullable=False),
        sa.Column("created_at", libs.common.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subject_call")),
        sa.UniqueConstraint("request_id", "action", name=op.f("uq_subject_call_request_id_action")),
    )
    op.create_table(
        "privacy_request",
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("account_id", sa.Uuid(), nullable=True),
        sa.Column("email", sa.String(length=254), nullable=True),
        sa.Column("email_index", sa.String(length=64), nullable=True),
        sa.Column("phone", sa.String(length=32), nullable=True),
        sa.Column("phone_index", sa.String(length=64), nullable=True),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("grounds", sa.Text(), nullable=True),
        sa.Column("changes", JSON, nullable=True),
        sa.Column("categories", JSON, nullable=True),
        sa.Column("disclosure_id", sa.Uuid(), nullable=True),
        sa.Column("received_at", libs.common.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("due_at", libs.common.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("extended_at", libs.common.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("extension_months", sa.Integer(), nullable=True),
        sa.Column("extension_reason", sa.Text(), nullable=True),
        sa.Column("verified_at", libs.common.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("verification_method", sa.String(length=32), nullable=True),
        sa.Column("verification_note", sa.Text(), nullable=True),
        sa.Column("verified_by", sa.String(length=64), nullable=True),
        sa.Column("created_by", sa.String(length=64), nullable=True),
        sa.Column("code_hash", sa.String(length=64), nullable=True),
        sa.Column("code_expires_at", libs.common.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("code_attempts", sa.Integer(), nullable=False),
        sa.Column("access_token_hash", sa.String(length=64), nullable=True),
        sa.Column("completed_at", libs.common.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("rejected_at", libs.common.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("rejection_reason", sa.Text(), nullable=True),
        sa.Column("failure_reason", sa.Text(), nullable=True),
        sa.Column("overdue_flagged_at", libs.common.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("finalize_lease_until", libs.common.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("export_file", sa.String(length=255), nullable=True),
        sa.Column("export_size", sa.Integer(), nullable=True),
        sa.Column("export_expires_at", libs.common.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("export_purged_at", libs.common.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("anonymised_at", libs.common.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", libs.common.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", libs.common.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["disclosure_id"],
            ["disclosure.id"],
            name=op.f("fk_privacy_request_disclosure_id_disclosure"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_privacy_request")),
    )
    op.create_index("ix_privacy_request_account_id_id", "privacy_request", ["account_id", "id"])
    op.create_index("ix_privacy_request_completed_at", "privacy_request", ["completed_at"])
    op.create_index("ix_privacy_request_disclosure_id", "privacy_request", ["disclosure_id"])
    op.create_index("ix_privacy_request_email_index", "privacy_request", ["email_index"])
    op.create_index(
        "ix_privacy_request_export_expires_at", "privacy_request", ["export_expires_at"]
    )
    op.create_index("ix_privacy_request_phone_index", "privacy_request", ["phone_index"])
    op.create_index("ix_privacy_request_status_due_at", "privacy_request", ["status", "due_at"])
    op.create_table(
        "consent_event",
        sa.Column("account_id", sa.Uuid(), nullable=True),
        sa.Column("email_index", sa.String(length=64), nullable=True),
        sa.Column("purpose", sa.String(length=32), nullable=False),
        sa.Column("granted", sa.Boolean(), nullable=False),
        sa.Column("text_version", sa.String(length=32), nullable=True),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("recorded_at", libs.common.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("privacy_request_id", sa.Uuid(), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["privacy_request_id"],
            ["privacy_request.id"],
            name=op.f("fk_consent_event_privacy_request_id_privacy_request"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consent_event")),
    )
    op.create_index("ix_consent_event_account_id_id", "consent_event", ["account_id", "id"])
    op.create_index("ix_consent_event_email_index", "consent_event", ["email_index"])
    op.create_index("ix_consent_event_privacy_request_id", "consent_event", ["privacy_request_id"])
    op.create_table(
        "mail_outbox",
        sa.Column("recipient", sa.String(length=254), nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("privacy_request_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", libs.common.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("next_attempt_at", libs.common.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("lease_owner", sa.String(length=64), nullable=True),
        sa.Column("lease_expires_at", libs.common.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("sent_at", libs.common.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["privacy_request_id"],
            ["privacy_request.id"],
            name=op.f("fk_mail_outbox_privacy_request_id_privacy_request"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mail_outbox")),
    )
    op.create_index("ix_mail_outbox_privacy_request_id", "mail_outbox", ["privacy_request_id"])
    op.create_index(
        "ix_mail_outbox_sent_at_next_attempt_at", "mail_outbox", ["sent_at", "next_attempt_at"]
    )
    op.create_table(
        "objection",
        sa.Column("account_id", sa.Uuid(), nullable=True),
        sa.Column("email_index", sa.String(length=64), nullable=True),
        sa.Column("grounds", sa.Text(), nullable=True),
        sa.Column("privacy_request_id", sa.Uuid(), nullable=False),
        sa.Column("recorded_at", libs.common.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["privacy_request_id"],
            ["privacy_request.id"],
            name=op.f("fk_objection_privacy_request_id_privacy_request"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_objection")),
        sa.UniqueConstraint("privacy_request_id", name=op.f("uq_objection_privacy_request_id")),
    )
    op.create_index("ix_objection_account_id", "objection", ["account_id"])
    op.create_index("ix_objection_email_index", "objection", ["email_index"])
    op.create_table(
        "privacy_task",
        sa.Column("request_id", sa.Uuid(), nullable=False),
        sa.Column("service", sa.String(length=16), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", libs.common.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("lease_owner", sa.String(length=64), nullable=True),
        sa.Column("lease_expires_at", libs.common.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("result", JSON, nullable=True),
        sa.Column("created_at", libs.common.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("started_at", libs.common.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("finished_at", libs.common.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["privacy_request.id"],
            name=op.f("fk_privacy_task_request_id_privacy_request"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_privacy_task")),
        sa.UniqueConstraint(
            "request_id",
            "service",
            "action",
            name=op.f("uq_privacy_task_request_id_service_action"),
        ),
    )
    op.create_index(
        "ix_privacy_task_status_lease_expires_at", "privacy_task", ["status", "lease_expires_at"]
    )
    op.create_index(
        "ix_privacy_task_status_next_attempt_at", "privacy_task", ["status", "next_attempt_at"]
    )
    op.create_table(
        "subject_restriction",
        sa.Column("account_id", sa.Uuid(), nullable=True),
        sa.Column("email_index", sa.String(length=64), nullable=True),
        sa.Column("basis", sa.String(length=16), nullable=False),
        sa.Column("restricted", sa.Boolean(), nullable=False),
        sa.Column("privacy_request_id", sa.Uuid(), nullable=True),
        sa.Column("changed_at", libs.common.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subject_restriction")),
        sa.UniqueConstraint(
            "account_id", "basis", name=op.f("uq_subject_restriction_account_id_basis")
        ),
        sa.UniqueConstraint(
            "email_index", "basis", name=op.f("uq_subject_restriction_email_index_basis")
        ),
    )
    statements = (
        PG_APPEND_ONLY if op.get_bind().dialect.name == "postgresql" else SQLITE_APPEND_ONLY
    )
    for statement in statements:
        op.execute(statement)


def downgrade() -> None:
    op.drop_table("subject_restriction")
    op.drop_index("ix_privacy_task_status_next_attempt_at", table_name="privacy_task")
    op.drop_index("ix_privacy_task_status_lease_expires_at", table_name="privacy_task")
    op.drop_table("privacy_task")
    op.drop_index("ix_objection_email_index", table_name="objection")
    op.drop_index("ix_objection_account_id", table_name="objection")
    op.drop_table("objection")
    op.drop_index("ix_mail_outbox_sent_at_next_attempt_at", table_name="mail_outbox")
    op.drop_index("ix_mail_outbox_privacy_request_id", table_name="mail_outbox")
    op.drop_table("mail_outbox")
    op.drop_index("ix_consent_event_privacy_request_id", table_name="consent_event")
    op.drop_index("ix_consent_event_email_index", table_name="consent_event")
    op.drop_index("ix_consent_event_account_id_id", table_name="consent_event")
    op.drop_table("consent_event")
    op.drop_index("ix_privacy_request_status_due_at", table_name="privacy_request")
    op.drop_index("ix_privacy_request_phone_index", table_name="privacy_request")
    op.drop_index("ix_privacy_request_export_expires_at", table_name="privacy_request")
    op.drop_index("ix_privacy_request_email_index", table_name="privacy_request")
    op.drop_index("ix_privacy_request_disclosure_id", table_name="privacy_request")
    op.drop_index("ix_privacy_request_completed_at", table_name="privacy_request")
    op.drop_index("ix_privacy_request_account_id_id", table_name="privacy_request")
    op.drop_table("privacy_request")
    op.drop_table("subject_call")
    op.drop_index("ix_incident_ap_notified_at_ap_deadline", table_name="incident")
    op.drop_table("incident")
    op.drop_index("ix_disclosure_decision_id", table_name="disclosure")
    op.drop_table("disclosure")
    op.drop_table("consent")
    op.drop_index("ix_audit_log_object_type_object_id", table_name="audit_log")
    op.drop_index("ix_audit_log_actor_id", table_name="audit_log")
    op.drop_table("audit_log")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION audit_log_is_append_only()")
