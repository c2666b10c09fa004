"""request_log indexed by (account_id, id), so the access export reads an account's entries
in keyset batches without sorting them all each time

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from collections.abc import Sequence

from libs.common.migrations import (
    index_request_log_by_account_and_id,
    index_request_log_by_account_and_timestamp,
)

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    index_request_log_by_account_and_id()


def downgrade() -> None:
    index_request_log_by_account_and_timestamp()
