"""The identity_api application."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.app import Overrides, ServiceDefinition, build_app
from libs.common.db import Database
from libs.common.idempotency import IdempotencyStore
from libs.common.logging import get_logger
from libs.common.metrics import outbox_gauges
from services.identity_api.accounts.endpoints import internal_router as internal_accounts
from services.identity_api.accounts.endpoints import router as accounts
from services.identity_api.api_keys.endpoints import internal_router as internal_api_keys
from services.identity_api.api_keys.endpoints import router as api_keys
from services.identity_api.auth.endpoints import handle_oauth_error
from services.identity_api.auth.endpoints import router as auth
from services.identity_api.auth.errors import OAuthError
from services.identity_api.authentication import build_authenticator
from services.identity_api.mail.outbox import OutboxDelivery, delivering
from services.identity_api.models import IdempotencyKey, OutboxMail, RequestLog
from services.identity_api.runtime import IdentityRuntime
from services.identity_api.security_events.endpoints import router as security_events
from services.identity_api.settings import IdentitySettings
from services.identity_api.signing_keys.endpoints import router as jwks
from services.identity_api.staff.endpoints import internal_router as internal_staff
from services.identity_api.staff.endpoints import router as staff
from services.identity_api.subjects.endpoints import router as subjects

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
VERSION = "0.1.0"

TAGS = [
    {
        "name": "auth",
        "description": "Registration, login (OAuth2 token endpoint), logout, "
        "e-mail confirmation, password reset, the JWKS.",
    },
    {"name": "accounts", "description": "Your account and its security events."},
    {"name": "api-keys", "description": "API keys for webshop plug-ins and integrations."},
    {"name": "staff", "description": "Back office: staff administration, audited look-ups."},
    {
        "name": "internal",
        "description": "Service-to-service routes (never routed by the "
        "gateway; need a service token).",
    },
]


_WAITING = (OutboxMail.sent_at.is_(None), OutboxMail.failed_at.is_(None))


async def _mail_waiting(session: AsyncSession) -> dict[tuple[str, ...], float]:
    count = await session.scalar(select(func.count()).select_from(OutboxMail).where(*_WAITING))
    return {("mail",): float(count or 0)}


async def _mail_oldest_due(session: AsyncSession) -> dict[tuple[str, ...], float]:
    now = datetime.now(UTC)
    oldest = await session.scalar(
        select(func.min(OutboxMail.next_attempt_at)).where(
            *_WAITING, OutboxMail.next_attempt_at <= now
        )
    )
    return {("mail",): (now - oldest).total_seconds() if oldest else 0.0}


async def _mail_failed(session: AsyncSession) -> dict[tuple[str, ...], float]:
    count = await session.scalar(
        select(func.count()).select_from(OutboxMail).where(OutboxMail.failed_at.is_not(None))
    )
    return {("mail",): float(count or 0)}


# Scraped from /metrics (decision 0804); the same names in every service, labelled by outbox.
DATABASE_GAUGES = outbox_gauges(_mail_waiting, _mail_oldest_due, _mail_failed)


@contextlib.asynccontextmanager
async def identity_lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Create the first signing key if there is none, and deliver queued mail."""
    runtime: IdentityRuntime = app.state.identity_runtime
    database: Database = app.state.database
    async with database.sessionmaker() as session:
        created = await runtime.keys.ensure_key(session, app.state.clock.now())
        await session.commit()
    if created is not None:
        get_logger("signing_keys").info("signing_key_created", kid=created.kid)
    delivery = OutboxDelivery(
        lambda: app.state.database.sessionmaker,
        lambda: app.state.mailer,
        lambda: app.state.clock,
        max_attempts=runtime.settings.mail_max_attempts,
    )
    app.state.mail_outbox = delivery
    if runtime.settings.mail_outbox_worker and not database.is_shared_connection:
        async with delivering(delivery, runtime.settings.mail_poll_seconds):
            yield
    else:
        yield


def create_app(
    settings: IdentitySettings | None = None, overrides: Overrides | None = None
) -> FastAPI:
    settings = settings or IdentitySettings()
    definition = ServiceDefinition(
        settings=settings,
        title="Parcel Pro Identity API",
        description="Account holders, staff, login, tokens and API keys.",
        version=VERSION,
        routers=[
            auth,
            accounts,
            security_events,
            api_keys,
            staff,
            jwks,
            internal_api_keys,
            internal_staff,
            internal_accounts,
            subjects,
        ],
        request_log_model=RequestLog,
        migrations_dir=MIGRATIONS_DIR,
        openapi_tags=TAGS,
        build_authenticator=build_authenticator,
        lifespans=[identity_lifespan],
        database_gauges=DATABASE_GAUGES,
    )
    app = build_app(definition, overrides)
    app.state.identity_runtime = IdentityRuntime.from_settings(settings)
    app.state.idempotency = IdempotencyStore(IdempotencyKey)
    app.add_exception_handler(OAuthError, handle_oauth_error)
    _offer_password_login_in_docs(app)
    return app


def _offer_password_login_in_docs(app: FastAPI) -> None:
    """Besides pasting a bearer token, Swagger's Authorize dialog can log in with e-mail and
    password through the token endpoint (OAuth2 password flow)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        document = build()
        schemes = document.setdefault("components", {}).setdefault("securitySchemes", {})
        schemes["OAuth2Password"] = {
            "type": "oauth2",
            "description": "Log in with your e-mail address and password.",
            "flows": {"password": {"tokenUrl": "/v1/auth/token", "scopes": {}}},
        }
        for path, item in document.get("paths", {}).items():
            if path.startswith("/internal/"):
                continue
            for operation in item.values():
                security = operation.get("security") if isinstance(operation, dict) else None
                if security and {"OAuth2Password": []} not in security:
                    security.append({"OAuth2Password": []})
        app.openapi_schema = document
        return document

    app.openapi = openapi  # type: ignore[method-assign]
