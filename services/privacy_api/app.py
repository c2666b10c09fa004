"""The privacy_api application."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from fastapi import FastAPI

from libs.common.app import Overrides, ServiceDefinition, build_app
from libs.common.http import ServiceCaller
from services.privacy_api.audit.endpoints import router as audit_router
from services.privacy_api.consents.endpoints import router as consents_router
from services.privacy_api.disclosures.endpoints import router as disclosures_router
from services.privacy_api.incidents.endpoints import router as incidents_router
from services.privacy_api.models import RequestLog
from services.privacy_api.register.endpoints import router as register_router
from services.privacy_api.requests.endpoints import router as requests_router
from services.privacy_api.settings import PrivacySettings
from services.privacy_api.subjects.endpoints import router as subjects_router
from services.privacy_api.tasks.worker import worker_lifespan

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
VERSION = "0.1.0"

TAGS = [
    {
        "name": "privacy requests",
        "description": "View, correct, restrict, erase, object, take along (AVG art. 15-21).",
    },
    {
        "name": "consents",
        "description": "Profiling, personalised advertisements, analytics cookies.",
    },
    {
        "name": "processing activities",
        "description": "The register of processing activities (art. 30).",
    },
    {"name": "disclosures", "description": "Authority requests (privacy officer)."},
    {"name": "incidents", "description": "The breach register (privacy officer)."},
    {"name": "audit log", "description": "Staff actions in this service (privacy officer)."},
    {"name": "internal", "description": "Service-to-service routes; never routed by the gateway."},
]


@contextlib.asynccontextmanager
async def shipping_caller(app: FastAPI) -> AsyncIterator[None]:
    """The caller for shipping's subject API, on the app's shared HTTP client."""
    settings: PrivacySettings = app.state.settings
    app.state.shipping = ServiceCaller(
        app.state.http, base_url=settings.shipping_url, name="shipping"
    )
    yield


def create_app(
    settings: PrivacySettings | None = None, overrides: Overrides | None = None
) -> FastAPI:
    settings = settings or PrivacySettings()
    definition = ServiceDefinition(
        settings=settings,
        title="Parcel Pro Privacy API",
        description="Data-subject requests, consents and the privacy registers.",
        version=VERSION,
        routers=[
            requests_router,
            consents_router,
            register_router,
            disclosures_router,
            incidents_router,
            audit_router,
            subjects_router,
        ],
        request_log_model=RequestLog,
        migrations_dir=MIGRATIONS_DIR,
        openapi_tags=TAGS,
        lifespans=[shipping_caller, worker_lifespan],
    )
    return build_app(definition, overrides)
