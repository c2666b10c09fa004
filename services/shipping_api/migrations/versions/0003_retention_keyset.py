"""the retention index orders by (final_at, id), so the purge can continue where its last
batch ended instead of stepping over every row it already erased

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DUE = "recipient_erased_at IS NULL AND final_at IS NOT NULL"


def upgrade() -> None:
    op.create_index(
        "ix_shipments_retention_due_final_at_id",
        "shipments",
        ["final_at", "id"],
        unique=False,
        postgresql_where=sa.text(DUE),
        sqlite_where=sa.text(DUE),
    )
    op.drop_index(
        "ix_shipments_retention_due",
        table_name="shipments",
        postgresql_where=sa.text(DUE),
        sqlite_where=sa.text(DUE),
    )


def downgrade() -> None:
    op.create_index(
        "ix_shipments_retention_due",
        "shipments",
        ["final_at"],
        unique=False,
        postgresql_where=sa.text(DUE),
        sqlite_where=sa.text(DUE),
    )
    op.drop_index(
        "ix_shipments_retention_due_final_at_id",
        table_name="shipments",
        postgresql_where=sa.text(DUE),
        sqlite_where=sa.text(DUE),
    )
