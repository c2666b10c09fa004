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
        _replace(name, columns, sa.text(f"{nulled} IS NOT NULL"))


def downgrade() -> None:
    for name, columns, _ in LOOKUPS:
        _replace(name, columns, None)


def _replace(name: str, columns: list[str], where: sa.TextClause | None) -> None:
    """Index ``columns`` of shipments as ``name``, only rows matching ``where`` (all if None).

    On PostgreSQL the table stays open to writes throughout: the new index is built
    concurrently under a name of its own, the old one dropped concurrently, and the new one
    renamed, none of which takes a lock that waits for, or holds up, writers for longer than
    the catalog change. Each step tolerates a run that stopped halfway (a concurrent build
    that fails leaves an invalid index behind), so the migration can simply be run again.
    SQLite, with its one writer, replaces the index in the migration's transaction.
    """
    if op.get_bind().dialect.name != "postgresql":
        op.drop_index(name, table_name="shipments")
        op.create_index(name, "shipments", columns, sqlite_where=where)
        return
    building = f"{name}_next"
    with op.get_context().autocommit_block():
        op.drop_index(
            building, table_name="shipments", if_exists=True, postgresql_concurrently=True
        )
        op.create_index(
            building, "shipments", columns, postgresql_where=where, postgresql_concurrently=True
        )
        op.drop_index(name, table_name="shipments", if_exists=True, postgresql_concurrently=True)
        op.execute(sa.text(f"ALTER INDEX {building} RENAME TO {name}"))
