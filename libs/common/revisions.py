"""The schema revisions a service's code expects and the ones its database has.

What a serving process needs for ``/readyz``, read without Alembic: Alembic, its templates and
the migration modules it imports take ~7 MB of every service process that never migrates
(decision 0708). ``libs.common.migrations`` drives Alembic for the ``migrate`` step.
"""

from __future__ import annotations

import ast
from pathlib import Path

from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection


def head_revisions(migrations_dir: Path) -> set[str]:
    """The revisions of ``migrations_dir/versions`` that no other revision revises.

    Each revision file names itself and its parents in the module-level assignments
    ``revision`` and ``down_revision`` (a string, a tuple of strings for a merge, or None),
    which are read from the source as Alembic's templates write them.
    """
    revisions: set[str] = set()
    revised: set[str] = set()
    for path in sorted((migrations_dir / "versions").glob("*.py")):
        names = _assignments(path, ("revision", "down_revision"))
        if "revision" not in names:
            continue
        revision = names["revision"]
        if not isinstance(revision, str):
            raise ValueError(f"{path}: revision must be a string, not {revision!r}")
        revisions.add(revision)
        parents = names.get("down_revision")
        if isinstance(parents, str):
            revised.add(parents)
        elif isinstance(parents, tuple | list):
            revised.update(str(parent) for parent in parents)
        elif parents is not None:
            raise ValueError(f"{path}: down_revision must name revisions, not {parents!r}")
    if not revisions:
        raise ValueError(f"no revisions in {migrations_dir / 'versions'}")
    return revisions - revised


def _assignments(path: Path, names: tuple[str, ...]) -> dict[str, object]:
    found: dict[str, object] = {}
    for node in ast.parse(path.read_text(encoding="utf-8"), filename=str(path)).body:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            targets, value = [node.target], node.value
        elif isinstance(node, ast.Assign):
            targets, value = [t for t in node.targets if isinstance(t, ast.Name)], node.value
        else:
            continue
        for target in targets:
            if target.id in names and value is not None:
                found[target.id] = ast.literal_eval(value)
    return found


async def current_revisions(conn: AsyncConnection, version_table: str) -> set[str]:
    """Revisions recorded in the version table (empty when the service was never migrated)."""
    if not version_table.replace("_", "").isalnum():
        raise ValueError(f"unexpected version table name {version_table!r}")

    def read(sync_connection: Connection) -> set[str]:
        if not inspect(sync_connection).has_table(version_table):
            return set()
        rows = sync_connection.execute(text(f"SELECT version_num FROM {version_table}"))  # noqa: S608 - checked name
        return {row[0] for row in rows}

    return await conn.run_sync(read)
