"""a shipment's events are paged by (occurred_at, id): the index behind that page carries id too,
so a page is read in index order, without a sort of the ties on occurred_at

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-08
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "shipment_events"
OLD = ("ix_shipment_events_shipment_id_occurred_at", ["shipment_id", "occurred_at"])
NEW = ("ix_shipment_events_shipment_id_occurred_at_id", ["shipment_id", "occurred_at", "id"])


def upgrade() -> None:
    _replace(OLD, NEW)


def downgrade() -> None:
    _replace(NEW, OLD)


def _replace(old: tuple[str, list[str]], new: tuple[str, list[str]]) -> None:
    """Build the ``new`` index, then drop the ``old`` one.

    On PostgreSQL the table stays open to writes throughout: both steps run concurrently, and
    the event history keeps an index on ``shipment_id`` at every moment. A build that stopped
    halfway leaves an invalid index, dropped first, so the migration can simply be run again.
    SQLite, with its one writer, replaces the index in the migration's transaction.
    """
    (old_name, _), (new_name, new_columns) = old, new
    if op.get_bind().dialect.name != "postgresql":
        op.create_index(new_name, TABLE, new_columns)
        op.drop_index(old_name, table_name=TABLE)
        return
    with op.get_context().autocommit_block():
        op.drop_index(new_name, table_name=TABLE, if_exists=True, postgresql_concurrently=True)
        op.create_index(new_name, TABLE, new_columns, postgresql_concurrently=True)
        op.drop_index(old_name, table_name=TABLE, if_exists=True, postgresql_concurrently=True)
