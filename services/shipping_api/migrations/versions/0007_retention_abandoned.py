"""the purge also finds shipments abandoned before a final status, in (status_changed_at, id)
order, through a partial index of the open shipments whose recipient is not erased yet

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEX = "ix_shipments_retention_abandoned_status_changed_at_id"
OPEN = sa.text("recipient_erased_at IS NULL AND final_at IS NULL")


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        op.create_index(INDEX, "shipments", ["status_changed_at", "id"], sqlite_where=OPEN)
        return
    # Built concurrently, so the table stays open to writes; a build that stopped halfway
    # leaves an invalid index, dropped first, so the migration can simply be run again.
    with op.get_context().autocommit_block():
        op.drop_index(INDEX, table_name="shipments", if_exists=True, postgresql_concurrently=True)
        op.create_index(
            INDEX,
            "shipments",
            ["status_changed_at", "id"],
            postgresql_where=OPEN,
            postgresql_concurrently=True,
        )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        op.drop_index(INDEX, table_name="shipments")
        return
    with op.get_context().autocommit_block():
        op.drop_index(INDEX, table_name="shipments", if_exists=True, postgresql_concurrently=True)
