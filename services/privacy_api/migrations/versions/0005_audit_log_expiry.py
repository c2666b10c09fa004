"""audit_log: entries older than a year may be deleted (the five-year retention purge); younger
ones, and every update or truncate, are still refused by the database

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# AVG art. 5(2) (accountability) against art. 5(1)(e) (storage limitation): the register keeps
# audit logs five years, so the deadlines run must be able to delete what has expired, but the
# application must still never remove recent evidence. 365 days is
# MINIMUM_AUDIT_LOG_RETENTION_DAYS of libs.common.settings as it was when this revision was
# written; it stays a literal, so that a later change of the setting's bound cannot weaken the
# database's guarantee without a migration of its own. The age is read from the database's own
# clock, never from the application's.
PG_UPGRADE = [
    "DROP TRIGGER audit_log_append_only ON audit_log",
    """
    CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_is_append_only()
    """,
    """
    CREATE FUNCTION audit_log_refuses_early_delete() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF OLD.at > now() - interval '365 days' THEN
            RAISE EXCEPTION
                'audit_log is append-only: DELETE of an entry younger than 365 days refused'
                USING ERRCODE = 'insufficient_privilege';
        END IF;
        RETURN OLD;
    END;
    $$
    """,
    """
    CREATE TRIGGER audit_log_no_early_delete BEFORE DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_refuses_early_delete()
    """,
]
PG_DOWNGRADE = [
    "DROP TRIGGER audit_log_no_early_delete ON audit_log",
    "DROP FUNCTION audit_log_refuses_early_delete()",
    "DROP TRIGGER audit_log_no_update ON audit_log",
    """
    CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_is_append_only()
    """,
]
# SQLite stores the UTC time as text; an entry whose time cannot be read counts as young (refused).
SQLITE_UPGRADE = [
    "DROP TRIGGER audit_log_no_delete",
    """
    CREATE TRIGGER audit_log_no_early_delete BEFORE DELETE ON audit_log
    WHEN julianday(OLD.at) IS NULL OR julianday(OLD.at) > julianday('now', '-365 days')
    BEGIN
        SELECT RAISE(
            ABORT, 'audit_log is append-only: DELETE of an entry younger than 365 days refused'
        );
    END
    """,
]
SQLITE_DOWNGRADE = [
    "DROP TRIGGER audit_log_no_early_delete",
    """
    CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
    BEGIN SELECT RAISE(ABORT, 'audit_log is append-only: DELETE refused'); END
    """,
]


def upgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    for statement in PG_UPGRADE if postgresql else SQLITE_UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    for statement in PG_DOWNGRADE if postgresql else SQLITE_DOWNGRADE:
        op.execute(statement)
