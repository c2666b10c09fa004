"""The privacy_api application."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from libs.common.app import Overrides, ServiceDefinition, build_app
from services.privacy_api.models import RequestLog
from services.privacy_api.settings import PrivacySettings

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
VERSION = "0.1.0"


def create_app(
    settings: PrivacySettings | None = None, overrides: Overrides | None = None
) -> FastAPI:
    settings = settings or PrivacySettings()
    definition = ServiceDefinition(
        settings=settings,
        title="Parcel Pro Privacy API",
        description="Data-subject requests, consents and the privacy registers.",
        version=VERSION,
        routers=[],
        request_log_model=RequestLog,
        migrations_dir=MIGRATIONS_DIR,
    )
    return build_app(definition, overrides)
