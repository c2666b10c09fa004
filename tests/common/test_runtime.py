"""A served process hands what start-up built to the permanent generation of the garbage
collector (full collections then walk only what requests make)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from services.identity_api.app import MIGRATIONS_DIR
from services.identity_api.settings import IdentitySettings
from tests.support.db import migrate_fresh
from tests.support.programs import run_program

PROGRAM = """
import asyncio, gc, json
from asgi_lifespan import LifespanManager
from services.identity_api.app import create_app
from services.identity_api.app import MIGRATIONS_DIR
from services.identity_api.settings import IdentitySettings
from tests.support.db import migrate_fresh

async def main():
    before = gc.get_freeze_count()
    settings = IdentitySettings(environment=ENVIRONMENT, request_log_to_db=False)
    app = create_app(settings)
    async with LifespanManager(app):
        print("RUNTIME", json.dumps({"before": before, "frozen": gc.get_freeze_count(),
                          "threshold": list(gc.get_threshold())}))

asyncio.run(main())
"""


def _started(environment: str, tmp_path: Path) -> dict[str, object]:
    # A database of its own: the started app writes (a signing key), and must not into the
    # suite's shared one. The collector does not depend on which database it is.
    settings = IdentitySettings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'identity.db'}",
        environment="test",
        var_dir=tmp_path,
    )
    migrate_fresh(settings, MIGRATIONS_DIR)
    env = {**os.environ, "VAR_DIR": str(tmp_path), "IDENTITY_DATABASE_URL": settings.database_url}
    result = run_program(PROGRAM.replace("ENVIRONMENT", repr(environment)), env=env)
    assert result.returncode == 0, result.stderr
    line = next(x for x in result.stdout.splitlines() if x.startswith("RUNTIME "))
    answer: dict[str, object] = json.loads(line.removeprefix("RUNTIME "))
    return answer


def test_a_started_service_freezes_its_start_up_objects(tmp_path: Path) -> None:
    started = _started("development", tmp_path)
    assert started["before"] == 0
    assert isinstance(started["frozen"], int)
    assert started["frozen"] > 10_000
    assert started["threshold"] == [20_000, 20, 20]


def test_in_process_test_apps_leave_the_collector_alone(tmp_path: Path) -> None:
    started = _started("test", tmp_path)
    assert started["frozen"] == 0
    assert started["threshold"] == [700, 10, 10]
