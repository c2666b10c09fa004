"""account_notices: notices other services asked identity to mail an account holder, under the
sender's id, so a retried call mails nothing twice (decision 0112)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-08
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import libs.common.db

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "account_notices",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("accepted_at", libs.common.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_account_notices_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_account_notices")),
    )
    op.create_index("ix_account_notices_account_id", "account_notices", ["account_id"])
    op.create_index("ix_account_notices_accepted_at", "account_notices", ["accepted_at"])


def downgrade() -> None:
    op.drop_index("ix_account_notices_accepted_at", table_name="account_notices")
    op.drop_index("ix_account_notices_account_id", table_name="account_notices")
    op.drop_table("account_notices")
