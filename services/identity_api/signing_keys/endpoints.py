"""``GET /.well-known/jwks.json``: the public keys that verify identity's access tokens."""

from __future__ import annotations

from fastapi import APIRouter, Response

from libs.common.clock import ClockDep
from libs.common.db import SessionDep
from services.identity_api.dependencies import RuntimeDep
from services.identity_api.signing_keys.schemas import Jwks

router = APIRouter(tags=["auth"])


@router.get(
    "/.well-known/jwks.json",
    response_model=Jwks,
    summary="Public keys of access tokens (JWKS)",
    description="Verify access tokens locally with these keys; pick the key by the token's "
    "`kid`. A new key appears here before it signs; cache for at most 10 minutes.",
)
async def jwks(
    session: SessionDep, clock: ClockDep, runtime: RuntimeDep, response: Response
) -> Jwks:
    response.headers["Cache-Control"] = "public, max-age=300"
    return Jwks.model_validate(await runtime.keys.jwks(session, clock.now()))
