"""The shipping_api application."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from libs.common.app import Overrides, ServiceDefinition, build_app
from services.shipping_api.models import RequestLog
from services.shipping_api.settings import ShippingSettings

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
VERSION = "0.1.0"


def create_app(
    settings: ShippingSettings | None = None, overrides: Overrides | None = None
) -> FastAPI:
    settings = settings or ShippingSettings()
    definition = ServiceDefinition(
        settings=settings,
        title="Parcel Pro Shipping API",
        description="Shipments, labels, track & trace, notifications and reports.",
        version=VERSION,
        routers=[],
        request_log_model=RequestLog,
        migrations_dir=MIGRATIONS_DIR,
    )
    return build_app(definition, overrides)
