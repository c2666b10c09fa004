"""webhook endpoints remember since when they have been failing, and why and when the service
switched one off (an endpoint failing for days is switched off, decision 0206)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-09
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from libs.common.db import UTCDateTime

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Nullable and without a default: on PostgreSQL a change of the catalogue only, no rewrite.
    # No index: the worker reads and writes them by the endpoint's primary key only.
    with op.batch_alter_table("webhook_endpoints") as batch:
        batch.add_column(sa.Column("failing_since", UTCDateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("disabled_reason", sa.String(16), nullable=True))
        batch.add_column(sa.Column("disabled_at", UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("webhook_endpoints") as batch:
        batch.drop_column("disabled_at")
        batch.drop_column("disabled_reason")
        batch.drop_column("failing_since")
