"""refresh_tokens keep their login's scopes and when that login happened, so a rotation neither
widens the grant nor keeps a login alive past its absolute lifetime

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

# What every account login was granted until now (all account scopes); staff logins carry none.
ACCOUNT_LOGIN_SCOPES = "reports:read shipments:read shipments:write webhooks:manage"


def upgrade() -> None:
    with op.batch_alter_table("refresh_tokens") as batch:
        batch.add_column(sa.Column("scope", sa.String(length=255), nullable=True))
        batch.add_column(sa.Column("authenticated_at", UTCDateTime(timezone=True), nullable=True))
    # A family's first token was issued at its login.
    op.execute(
        sa.text(
            "UPDATE refresh_tokens SET "
            "scope = CASE WHEN account_id IS NULL THEN '' ELSE :scopes END, "
            "authenticated_at = (SELECT MIN(earliest.created_at) FROM refresh_tokens AS earliest "
            "WHERE earliest.family_id = refresh_tokens.family_id)"
        ).bindparams(scopes=ACCOUNT_LOGIN_SCOPES)
    )
    with op.batch_alter_table("refresh_tokens") as batch:
        batch.alter_column("scope", existing_type=sa.String(length=255), nullable=False)
        batch.alter_column(
            "authenticated_at", existing_type=UTCDateTime(timezone=True), nullable=False
        )


def downgrade() -> None:
    with op.batch_alter_table("refresh_tokens") as batch:
        batch.drop_column("authenticated_at")
        batch.drop_column("scope")
