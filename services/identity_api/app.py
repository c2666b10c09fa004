"""The identity_api application."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from libs.common.app import Overrides, ServiceDefinition, build_app
from services.identity_api.models import RequestLog
from services.identity_api.settings import IdentitySettings

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
VERSION = "0.1.0"


def create_app(
    settings: IdentitySettings | None = None, overrides: Overrides | None = None
) -> FastAPI:
    settings = settings or IdentitySettings()
    definition = ServiceDefinition(
        settings=settings,
        title="Parcel Pro Identity API",
        description="Account holders, staff, login, tokens and API keys.",
        version=VERSION,
        routers=[],
        request_log_model=RequestLog,
        migrations_dir=MIGRATIONS_DIR,
    )
    return build_app(definition, overrides)
