"""mail_outbox indexed by (account_id, id): an account's export and erasure, and the cascade of
an account's deletion, find its mail without reading the whole outbox

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_mail_outbox_account_id_id", "mail_outbox", ["account_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_mail_outbox_account_id_id", table_name="mail_outbox")
