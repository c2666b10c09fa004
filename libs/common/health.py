"""``/healthz`` (the process answers) and ``/readyz`` (its database answers and is migrated)."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from pydantic import BaseModel
from sqlalchemy import text

from libs.common.db import Database
from libs.common.errors import ServiceUnavailable, problem_responses
from libs.common.logging import get_logger
from libs.common.revisions import current_revisions

log = get_logger("health")


class Health(BaseModel):
    status: str
    service: str


def build_health_router(service: str) -> APIRouter:
    router = APIRouter(tags=["health"])

    @router.get("/healthz", response_model=Health, summary="The process is alive")
    async def healthz() -> Health:
        return Health(status="ok", service=service)

    @router.get(
        "/readyz",
        response_model=Health,
        summary="The database is reachable and migrated",
        responses=problem_responses(503),
    )
    async def readyz(request: Request) -> Health:
        database: Database = request.app.state.database
        heads: set[str] = request.app.state.migration_heads
        version_table: str = request.app.state.settings.version_table
        try:
            async with asyncio.timeout(3):
                async with database.sessionmaker() as session:
                    await session.execute(text("SELECT 1"))
                    current = await current_revisions(await session.connection(), version_table)
        except Exception as exc:
            log.warning("not_ready", reason=type(exc).__name__, error=str(exc)[:300])
            raise ServiceUnavailable("database unreachable") from exc
        if current != heads:
            raise ServiceUnavailable("database migrations are not at head")
        return Health(status="ready", service=service)

    return router
