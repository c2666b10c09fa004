"""request log: requests of authenticated account holders (privacy statement: Logs)

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import libs.common.db

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "request_log",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("ip", sa.String(length=45), nullable=True),
        sa.Column("timestamp", libs.common.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("duration_ms", sa.Double(), nullable=False),
        sa.Column("method", sa.String(length=16), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=True),
        sa.Column("port", sa.Integer(), nullable=True),
        sa.Column("path", sa.String(length=2048), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("request_size", sa.Integer(), nullable=False),
        sa.Column("response_size", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.String(length=128), nullable=False),
        sa.Column("service", sa.String(length=32), nullable=False),
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_request_log")),
    )
    op.create_index(
        "ix_request_log_account_id_timestamp", "request_log", ["account_id", "timestamp"]
    )
    op.create_index("ix_request_log_timestamp", "request_log", ["timestamp"])


def downgrade() -> None:
    op.drop_index("ix_request_log_timestamp", table_name="request_log")
    op.drop_index("ix_request_log_account_id_timestamp", table_name="request_log")
    op.drop_table("request_log")
