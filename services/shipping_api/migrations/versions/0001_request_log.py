"""request log: requests of authenticated account holders (privacy statement: Logs)

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from collections.abc import Sequence

from libs.common.migrations import create_request_log_table, drop_request_log_table

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    create_request_log_table()


def downgrade() -> None:
    drop_request_log_table()
