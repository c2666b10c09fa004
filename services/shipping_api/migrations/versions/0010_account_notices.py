"""account notices: the durable outbox of notices to account holders, which identity mails (a
failing webhook endpoint was switched off, decision 0206)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-10
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from libs.common.db import UTCDateTime

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A new, empty table: no rewrite of anything that exists.
    op.create_table(
        "account_notices",
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=48), nullable=False),
        sa.Column(
            "payload",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("give_up_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_error", sa.String(length=300), nullable=True),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_account_notices")),
    )
    op.create_index("ix_account_notices_account_id", "account_notices", ["account_id"])
    # The dispatcher claims due rows in this order.
    op.create_index("ix_account_notices_next_attempt_at", "account_notices", ["next_attempt_at"])


def downgrade() -> None:
    op.drop_index("ix_account_notices_next_attempt_at", table_name="account_notices")
    op.drop_index("ix_account_notices_account_id", table_name="account_notices")
    op.drop_table("account_notices")
