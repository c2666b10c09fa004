"""FastAPI dependencies of identity's endpoints: the runtime and facts about the caller."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from libs.common.clock import ClockDep
from libs.common.logging import request_client_ip
from services.identity_api.auth.service import Context
from services.identity_api.origin import Origin
from services.identity_api.runtime import IdentityRuntime


async def get_runtime(request: Request) -> IdentityRuntime:
    runtime: IdentityRuntime = request.app.state.identity_runtime
    return runtime


RuntimeDep = Annotated[IdentityRuntime, Depends(get_runtime)]


async def get_origin(request: Request) -> Origin:
    ip = request_client_ip(request)
    agent = request.headers.get("user-agent")
    return Origin(ip=ip, user_agent=agent[:300] if agent else None)


OriginDep = Annotated[Origin, Depends(get_origin)]


async def get_context(
    request: Request, runtime: RuntimeDep, origin: OriginDep, clock: ClockDep
) -> Context:
    return Context(
        runtime=runtime,
        limiter=request.app.state.rate_limiter,
        now=clock.now(),
        origin=origin,
    )


ContextDep = Annotated[Context, Depends(get_context)]
