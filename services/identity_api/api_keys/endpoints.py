"""``/v1/api-keys`` and ``/internal/v1/api-keys/introspect``."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Request, status
from starlette.responses import Response

from libs.common.auth import Principal, ServiceScope, require_service, require_user
from libs.common.clock import ClockDep
from libs.common.db import SessionDep
from libs.common.errors import problem_responses
from libs.common.idempotency import IdempotencyDep, IdempotencyKeyHeader, json_response
from libs.common.openapi import operation_link
from libs.common.pagination import Page, PageParamsDep
from services.identity_api.api_keys import service
from services.identity_api.api_keys.schemas import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyRead,
    Introspection,
    IntrospectionRequest,
)
from services.identity_api.dependencies import ContextDep, RuntimeDep
from services.identity_api.models import ApiKey

router = APIRouter(prefix="/v1/api-keys", tags=["api-keys"])
internal_router = APIRouter(prefix="/internal/v1/api-keys", tags=["internal"])

UserDep = Annotated[Principal, Depends(require_user())]


CREATE_DESCRIPTION = (
    "The key is in this response only; Parcel Pro stores a hash of it. Needs a login (an API "
    "key cannot create keys).\n\n"
    "Send an `Idempotency-Key` to make a retry create no second key. Since the secret is "
    "never stored, not even for a replay, a repeat of a create that succeeded does not answer "
    "`201` again but `409` (`replay-unavailable`, no `Retry-After`) with the created key's "
    "`Location`: if the first answer was lost, revoke that key and create a new one with a new "
    "`Idempotency-Key`. A `409` with `Retry-After` means the first request is still running."
)


def _read(row: ApiKey) -> ApiKeyRead:
    return ApiKeyRead(
        id=row.id,
        name=row.name,
        prefix=row.prefix,
        mode=row.mode,
        scopes=list(row.scopes),
        created_at=row.created_at,
        last_used_at=row.last_used_at,
        revoked_at=row.revoked_at,
    )


def _account_id(principal: Principal) -> uuid.UUID:
    assert principal.account_id is not None  # noqa: S101 - require_user guarantees it
    return principal.account_id


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=ApiKeyCreated,
    summary="Create an API key",
    description=CREATE_DESCRIPTION,
    responses={
        201: {
            "description": "The key, shown this once.",
            "links": {
                "GetApiKey": operation_link(
                    "GET",
                    "/v1/api-keys/{key_id}",
                    {"key_id": "$response.body#/id"},
                    "The key just created (without its secret).",
                ),
                "RevokeApiKey": operation_link(
                    "DELETE",
                    "/v1/api-keys/{key_id}",
                    {"key_id": "$response.body#/id"},
                    "Revoke the key just created.",
                ),
            },
        },
        **problem_responses(401, 403, 409, 422),
    },
)
async def create_api_key(
    body: ApiKeyCreate,
    request: Request,
    session: SessionDep,
    ctx: ContextDep,
    principal: UserDep,
    idempotency: IdempotencyDep,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    account_id = _account_id(principal)
    async with idempotency.guard(
        request, session, scope=str(account_id), key=idempotency_key, now=ctx.now
    ) as claim:
        if claim.replay is not None:
            raise service.ReplayUnavailable(claim.replay.headers["location"])
        row, key = await service.create(session, ctx, account_id, body)
        read = _read(row)
        location = f"{router.prefix}/{row.id}"
        # Decision 0107: the secret is stored only as a keyed hash, so what is kept of this
        # answer is the key without it, and only this answer carries it.
        await claim.complete(status.HTTP_201_CREATED, read, resource_id=row.id, location=location)
    return json_response(
        status.HTTP_201_CREATED,
        ApiKeyCreated(**read.model_dump(), key=key),
        headers={"Location": location, "Cache-Control": "no-store"},
    )


@router.get(
    "",
    response_model=Page[ApiKeyRead],
    summary="Your API keys (without secrets)",
    responses=problem_responses(401, 403, 422),
)
async def list_api_keys(
    session: SessionDep, params: PageParamsDep, principal: UserDep
) -> Page[ApiKeyRead]:
    rows, cursor = await service.list_for_account(session, _account_id(principal), params)
    return Page[ApiKeyRead](data=[_read(row) for row in rows], next_cursor=cursor)


@router.get(
    "/{key_id}",
    response_model=ApiKeyRead,
    summary="One of your API keys (without its secret)",
    responses=problem_responses(401, 403, 404, 422),
)
async def get_api_key(key_id: uuid.UUID, session: SessionDep, principal: UserDep) -> ApiKeyRead:
    return _read(await service.get(session, _account_id(principal), key_id))


@router.delete(
    "/{key_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Revoke an API key",
    description="Refused everywhere within 30 seconds.",
    responses=problem_responses(401, 403, 404),
)
async def revoke_api_key(
    key_id: uuid.UUID, session: SessionDep, ctx: ContextDep, principal: UserDep
) -> None:
    await service.revoke(session, ctx, _account_id(principal), key_id)


@internal_router.post(
    "/introspect",
    response_model=Introspection,
    response_model_exclude_none=True,
    summary="Check an API key (services only)",
    description='`{"active": false}` for unknown, malformed or revoked keys. Cache an '
    "answer for at most 30 seconds (negative ones 5 seconds).",
    responses=problem_responses(401, 403, 422),
)
async def introspect(
    body: IntrospectionRequest,
    session: SessionDep,
    runtime: RuntimeDep,
    clock: ClockDep,
    _service: Annotated[Principal, Depends(require_service(ServiceScope.INTROSPECT))],
) -> Introspection:
    row = await service.check(session, runtime.hash_key, body.token, clock.now())
    return service.introspection(row)
