"""webhook endpoints keep the secret before the last rotation, and until when it still signs
(indexed for the retention job, which drops it after that)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from libs.common.db import UTCDateTime

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


INDEX = "ix_webhook_endpoints_previous_secret_expires_at"
ONLY_SET = sa.text("previous_secret_expires_at IS NOT NULL")


def upgrade() -> None:
    # Nullable and without a default: on PostgreSQL a change of the catalogue only, no rewrite;
    # the new index is empty (no endpoint has a previous secret yet), so it is built at once.
    with op.batch_alter_table("webhook_endpoints") as batch:
        batch.add_column(sa.Column("previous_secret_ciphertext", sa.String(200), nullable=True))
        batch.add_column(
            sa.Column("previous_secret_expires_at", UTCDateTime(timezone=True), nullable=True)
        )
    op.create_index(
        INDEX,
        "webhook_endpoints",
        ["previous_secret_expires_at"],
        postgresql_where=ONLY_SET,
        sqlite_where=ONLY_SET,
    )


def downgrade() -> None:
    op.drop_index(INDEX, table_name="webhook_endpoints")
    with op.batch_alter_table("webhook_endpoints") as batch:
        batch.drop_column("previous_secret_expires_at")
        batch.drop_column("previous_secret_ciphertext")
