"""What endpoints hand to this service's logic: the collaborators built in the lifespan, and the
principals the routes accept."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from fastapi import BackgroundTasks, Depends, Request

from libs.common.auth import (
    OptionalPrincipalDep,
    Principal,
    PrincipalKind,
    Role,
    ServiceTokenProvider,
    require_staff,
)
from libs.common.clock import Clock
from libs.common.db import Database
from libs.common.errors import Unauthorized
from libs.common.http import ServiceCaller
from libs.common.logging import request_client_ip
from libs.common.mail import Mailer
from libs.common.ratelimit import RateLimiter
from services.privacy_api.settings import PrivacySettings


@dataclass(frozen=True, slots=True)
class Collaborators:
    settings: PrivacySettings
    database: Database
    clock: Clock
    mailer: Mailer
    rate_limiter: RateLimiter
    identity: ServiceCaller
    shipping: ServiceCaller
    service_tokens: ServiceTokenProvider

    def now(self) -> datetime:
        return self.clock.now()


def collaborators_of(state: Any) -> Collaborators:
    """The collaborators of an app (``app.state``), for endpoints and the worker alike."""
    return Collaborators(
        settings=state.settings,
        database=state.database,
        clock=state.clock,
        mailer=state.mailer,
        rate_limiter=state.rate_limiter,
        identity=state.identity,
        shipping=state.shipping,
        service_tokens=state.service_tokens,
    )


async def get_collaborators(request: Request) -> Collaborators:
    return collaborators_of(request.app.state)


CollaboratorsDep = Annotated[Collaborators, Depends(get_collaborators)]


async def wake_worker_after_response(request: Request, background: BackgroundTasks) -> None:
    """Tasks this request commits start at once in this process's worker instead of at its
    next poll (up to ``worker_poll_seconds`` later). The wake-up runs after the response, so
    after the commit (the session commits before the response is sent)."""
    worker = getattr(request.app.state, "worker", None)
    if worker is not None:
        background.add_task(worker.wake)


WakeWorkerDep = Annotated[None, Depends(wake_worker_after_response)]
"""For routes that enqueue tasks (a verified request, an approved disclosure)."""


@dataclass(frozen=True, slots=True)
class Caller:
    """Who sent this HTTP request, as far as the audit log and rate limits care."""

    ip: str | None
    request_id: str | None


async def get_caller(request: Request) -> Caller:
    ip = request_client_ip(request)
    state = request.scope.get("state") or {}
    return Caller(ip=ip, request_id=state.get("request_id"))


CallerDep = Annotated[Caller, Depends(get_caller)]

OfficerDep = Annotated[Principal, Depends(require_staff(Role.PRIVACY_OFFICER))]
"""The privacy officer (Functionaris Gegevensbescherming); admins pass too."""


async def get_public_principal(principal: OptionalPrincipalDep) -> Principal | None:
    """The caller of a public route that also serves people without a login."""
    if principal is not None and principal.kind is PrincipalKind.SERVICE:
        raise Unauthorized("service tokens are only accepted on internal routes")
    return principal


PublicPrincipalDep = Annotated[Principal | None, Depends(get_public_principal)]
