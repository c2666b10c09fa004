"""identity: accounts, staff, refresh and mail tokens, signing keys, API keys, security
events, the mail outbox, the staff access log and data-subject request results

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import libs.common.db

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
FIRST_DEBTOR_NUMBER = 100_001

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=True),
        sa.Column("password_hash", sa.String(length=255), nullable=True),
        sa.Column("debtor_number", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("contact_person", sa.String(length=200), nullable=True),
        sa.Column("postcode", sa.String(length=12), nullable=False),
        sa.Column("house_number", sa.String(length=16), nullable=False),
        sa.Column("street", sa.String(length=200), nullable=False),
        sa.Column("city", sa.String(length=100), nullable=False),
        sa.Column("country", sa.String(length=2), nullable=False),
        sa.Column("kvk_number", sa.String(length=12), nullable=True),
        sa.Column("iban_encrypted", sa.String(length=255), nullable=True),
        sa.Column("account_holder", sa.String(length=200), nullable=True),
        sa.Column("phone", sa.String(length=32), nullable=True),
        sa.Column("website", sa.String(length=255), nullable=True),
        sa.Column("vat_number", sa.String(length=20), nullable=True),
        sa.Column("email_verified_at", libs.common.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("processing_restricted", sa.Boolean(), nullable=False),
        sa.Column("processing_objected", sa.Boolean(), nullable=False),
        sa.Column("erased_at", libs.common.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("retain_until", libs.common.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", libs.common.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", libs.common.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_accounts")),
        sa.UniqueConstraint("debtor_number", name=op.f("uq_accounts_debtor_number")),
    )
    op.create_index("ix_accounts_phone", "accounts", ["phone"], unique=False)
    op.create_index("ix_accounts_retain_until", "accounts", ["retain_until"], unique=False)
    op.create_index(
        "uq_accounts_email_lower", "accounts", [sa.literal_column("lower(email)")], unique=True
    )
    counter = op.create_table(
        "debtor_number_counter",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("last_value", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_debtor_number_counter")),
    )
    op.bulk_insert(counter, [{"id": 1, "last_value": FIRST_DEBTOR_NUMBER - 1}])
    op.create_table(
        "signing_keys",
        sa.Column("kid", sa.String(length=64), nullable=False),
        sa.Column("algorithm", sa.String(length=16), nullable=False),
        sa.Column("public_key", sa.Text(), nullable=False),
        sa.Column("private_key_encrypted", sa.Text(), nullable=False),
        sa.Column("created_at", libs.common.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("activates_at", libs.common.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("retires_at", libs.common.db.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("kid", name=op.f("pk_signing_keys")),
    )
    op.create_index("ix_signing_keys_activates_at", "signing_keys", ["activates_at"], unique=False)
    op.create_table(
        "staff_users",
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("disabled_at", libs.common.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_login_at", libs.common.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", libs.common.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", libs.common.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staff_users")),
    )
    op.create_index(
        "uq_staff_users_email_lower",
        "staff_users",
        [sa.literal_column("lower(email)")],
        unique=True,
    )
    op.create_table(
        "subject_request_results",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("request_id", sa.String(length=128), nullable=False),
        sa.Column("operation", sa.String(length=32), nullable=False),
        sa.Column("response", JSON, nullable=False),
        sa.Column("created_at", libs.common.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subject_request_results")),
        sa.UniqueConstraint(
            "request_id", "operation", name=op.f("uq_subject_request_results_request_id_operation")
        ),
    )
    op.create_table(
        "api_keys",
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=True),
        sa.Column("mode", sa.String(length=8), nullable=False),
        sa.Column("scopes", JSON, nullable=False),
        sa.Column("created_at", libs.common.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", libs.common.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", libs.common.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_api_keys_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("prefix", name=op.f("uq_api_keys_prefix")),
    )
    op.create_index("ix_api_keys_account_id_id", "api_keys", ["account_id", "id"], unique=False)
    op.create_table(
        "mail_outbox",
        sa.Column("account_id", sa.Uuid(), nullable=True),
        sa.Column("to_address", sa.String(length=254), nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("body_text", sa.Text(), nullable=False),
        sa.Column("created_at", libs.common.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", libs.common.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("sent_at", libs.common.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("failed_at", libs.common.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_mail_outbox_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mail_outbox")),
    )
    op.create_index(
        "ix_mail_outbox_sent_at_next_attempt_at",
        "mail_outbox",
        ["sent_at", "next_attempt_at"],
        unique=False,
    )
    op.create_table(
        "mail_tokens",
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("purpose", sa.String(length=32), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("created_at", libs.common.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", libs.common.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("used_at", libs.common.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_mail_tokens_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mail_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_mail_tokens_token_hash")),
    )
    op.create_index(
        "ix_mail_tokens_account_id_purpose", "mail_tokens", ["account_id", "purpose"], unique=False
    )
    op.create_index("ix_mail_tokens_expires_at", "mail_tokens", ["expires_at"], unique=False)
    op.create_table(
        "refresh_tokens",
        sa.Column("family_id", sa.Uuid(), nullable=False),
        sa.Column("subject_kind", sa.String(length=16), nullable=False),
        sa.Column("account_id", sa.Uuid(), nullable=True),
        sa.Column("staff_id", sa.Uuid(), nullable=True),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", libs.common.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", libs.common.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("rotated_at", libs.common.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", libs.common.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_refresh_tokens_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["staff_id"],
            ["staff_users.id"],
            name=op.f("fk_refresh_tokens_staff_id_staff_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_refresh_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_refresh_tokens_token_hash")),
    )
    op.create_index("ix_refresh_tokens_account_id", "refresh_tokens", ["account_id"], unique=False)
    op.create_index("ix_refresh_tokens_family_id", "refresh_tokens", ["family_id"], unique=False)
    op.create_index("ix_refresh_tokens_staff_id", "refresh_tokens", ["staff_id"], unique=False)
    op.create_index("ix_refresh_tokens_expires_at", "refresh_tokens", ["expires_at"], unique=False)
    op.create_table(
        "security_events",
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("type", sa.String(length=40), nullable=False),
        sa.Column("ip", sa.String(length=45), nullable=True),
        sa.Column("user_agent", sa.String(length=300), nullable=True),
        sa.Column("details", JSON, nullable=False),
        sa.Column("created_at", libs.common.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_security_events_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_security_events")),
    )
    op.create_index(
        "ix_security_events_account_id_id", "security_events", ["account_id", "id"], unique=False
    )
    op.create_table(
        "staff_access_log",
        sa.Column("staff_id", sa.Uuid(), nullable=False),
        sa.Column("account_id", sa.Uuid(), nullable=True),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("fields", JSON, nullable=False),
        sa.Column("query", sa.String(length=300), nullable=True),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("ip", sa.String(length=45), nullable=True),
        sa.Column("created_at", libs.common.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_staff_access_log_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["staff_id"], ["staff_users.id"], name=op.f("fk_staff_access_log_staff_id_staff_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staff_access_log")),
    )
    op.create_index(
        "ix_staff_access_log_account_id_id", "staff_access_log", ["account_id", "id"], unique=False
    )
    op.create_index(
        "ix_staff_access_log_staff_id_id", "staff_access_log", ["staff_id", "id"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_staff_access_log_staff_id_id", table_name="staff_access_log")
    op.drop_index("ix_staff_access_log_account_id_id", table_name="staff_access_log")
    op.drop_table("staff_access_log")
    op.drop_index("ix_security_events_account_id_id", table_name="security_events")
    op.drop_table("security_events")
    op.drop_index("ix_refresh_tokens_expires_at", table_name="refresh_tokens")
    op.drop_index("ix_refresh_tokens_staff_id", table_name="refresh_tokens")
    op.drop_index("ix_refresh_tokens_family_id", table_name="refresh_tokens")
    op.drop_index("ix_refresh_tokens_account_id", table_name="refresh_tokens")
    op.drop_table("refresh_tokens")
    op.drop_index("ix_mail_tokens_expires_at", table_name="mail_tokens")
    op.drop_index("ix_mail_tokens_account_id_purpose", table_name="mail_tokens")
    op.drop_table("mail_tokens")
    op.drop_index("ix_mail_outbox_sent_at_next_attempt_at", table_name="mail_outbox")
    op.drop_table("mail_outbox")
    op.drop_index("ix_api_keys_account_id_id", table_name="api_keys")
    op.drop_table("api_keys")
    op.drop_table("subject_request_results")
    op.drop_index("uq_staff_users_email_lower", table_name="staff_users")
    op.drop_table("staff_users")
    op.drop_index("ix_signing_keys_activates_at", table_name="signing_keys")
    op.drop_table("signing_keys")
    op.drop_table("debtor_number_counter")
    op.drop_index("uq_accounts_email_lower", table_name="accounts")
    op.drop_index("ix_accounts_retain_until", table_name="accounts")
    op.drop_index("ix_accounts_phone", table_name="accounts")
    op.drop_table("accounts")
