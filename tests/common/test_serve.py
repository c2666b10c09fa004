"""``serve`` migrates a SQLite database before serving, in a child process: the serving process
holds no Alembic (docs/decisions/0708)."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
from pathlib import Path

from libs.common.revisions import head_revisions
from services.identity_api.app import MIGRATIONS_DIR
from services.identity_api.settings import IdentitySettings
from tests.support.programs import run_program

# `serve` as `python -m services.identity_api serve` runs it, with uvicorn's run replaced by
# what uvicorn would do first (build the app) and a report of what the process has imported.
PROGRAM = """
import json, sys
import uvicorn
from services.identity_api.__main__ import main

def serve(app_factory, **options):
    from services.identity_api.app import create_app
    create_app()
    loaded = sorted({m.split(".")[0] for m in sys.modules} & {"alembic", "mako"})
    print("SERVING " + json.dumps({"loaded": loaded}))

uvicorn.run = serve
sys.exit(main(["serve"]))
"""


def _serve(tmp_path: Path, database_url: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "VAR_DIR": str(tmp_path),
        "IDENTITY_DATABASE_URL": database_url,
        "ENVIRONMENT": "development",
    }
    return run_program(PROGRAM, env=env)


def test_serve_migrates_first_and_serves_without_alembic(tmp_path: Path) -> None:
    database = tmp_path / "identity.db"
    result = _serve(tmp_path, f"sqlite+aiosqlite:///{database}")
    assert result.returncode == 0, result.stderr
    line = next(x for x in result.stdout.splitlines() if x.startswith("SERVING "))
    assert json.loads(line.removeprefix("SERVING "))["loaded"] == []
    version_table = IdentitySettings(database_url=f"sqlite+aiosqlite:///{database}").version_table
    with sqlite3.connect(database) as conn:
        stored = {row[0] for row in conn.execute(f"SELECT version_num FROM {version_table}")}  # noqa: S608 - a settings name
    assert stored == head_revisions(MIGRATIONS_DIR)


def test_serve_stops_when_the_migration_fails(tmp_path: Path) -> None:
    (tmp_path / "blocked").write_text("a file where the database's folder would be")
    result = _serve(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'blocked' / 'identity.db'}")
    assert result.returncode == 1
    assert "SERVING" not in result.stdout
    assert "migrating the database failed" in result.stderr
