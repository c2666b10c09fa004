"""the lookups by blind index and by reference index only rows that still have one, so erasing
a recipient (which nulls them) adds no entries to those indexes

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (index, columns, the column an erasure nulls)
LOOKUPS = (
    ("ix_shipments_account_id_reference", ["account_id", "reference"], "reference"),
    ("ix_shipments_recipient_email_index", ["recipient_email_index"], "recipient_email_index"),
    ("ix_shipments_recipient_phone_index", ["recipient_phone_index"], "recipient_phone_index"),
)


def upgrade() -> None:
    for name, columns, nulled in LOOKUPS:
        op.drop_index(name, table_name="shipments")
        present = sa.text(f"{nulled} IS NOT NULL")
        op.create_index(
            name,
            "shipments",
            columns,
            unique=False,
            postgresql_where=present,
            sqlite_where=present,
        )


def downgrade() -> None:
    for name, columns, nulled in LOOKUPS:
        present = sa.text(f"{nulled} IS NOT NULL")
        op.drop_index(name, table_name="shipments", postgresql_where=present, sqlite_where=present)
        op.create_index(name, "shipments", columns, unique=False)
