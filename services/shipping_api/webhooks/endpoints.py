"""``/v1/webhook-endpoints``: an account's receivers of signed shipment events, and their
delivery log."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from libs.common.auth import Principal, Scope, require_account
from libs.common.clock import ClockDep
from libs.common.db import SessionDep
from libs.common.errors import problem_responses
from libs.common.idempotency import IdempotencyClaim, IdempotencyDep, IdempotencyKeyHeader
from libs.common.openapi import operation_link
from libs.common.pagination import Page, PageParamsDep
from services.shipping_api.dependencies import OutboxesDep
from services.shipping_api.models import WebhookDelivery, WebhookEndpoint
from services.shipping_api.vocabulary import PING_EVENT, WebhookEvent
from services.shipping_api.webhooks import service
from services.shipping_api.webhooks.outbox import EndpointDisabledReason
from services.shipping_api.webhooks.schemas import (
    WebhookDeliveryRead,
    WebhookEndpointCreate,
    WebhookEndpointCreated,
    WebhookEndpointRead,
    WebhookEndpointUpdate,
    WebhookSecretRotated,
    WebhookSecretRotation,
)
from services.shipping_api.webhooks.service import WebhookPolicy

router = APIRouter(prefix="/v1/webhook-endpoints", tags=["webhooks"])

Manager = Annotated[Principal, Depends(require_account(Scope.WEBHOOKS_MANAGE))]

_ENDPOINT = {"endpoint_id": "$response.body#/id"}
_ITEM = "/v1/webhook-endpoints/{endpoint_id}"
CREATED_LINKS = {
    "GetWebhookEndpoint": operation_link("GET", _ITEM, _ENDPOINT, "The endpoint just created."),
    "UpdateWebhookEndpoint": operation_link("PATCH", _ITEM, _ENDPOINT, "Change it."),
    "DeleteWebhookEndpoint": operation_link("DELETE", _ITEM, _ENDPOINT, "Delete it."),
    "ListWebhookDeliveries": operation_link(
        "GET", f"{_ITEM}/deliveries", _ENDPOINT, "Its delivery log."
    ),
    "RotateWebhookSecret": operation_link(
        "POST", f"{_ITEM}/rotate-secret", _ENDPOINT, "Replace its signing secret."
    ),
    "PingWebhookEndpoint": operation_link(
        "POST", f"{_ITEM}/ping", _ENDPOINT, "Send it a test delivery."
    ),
}


async def _policy(request: Request) -> WebhookPolicy:
    policy: WebhookPolicy = request.app.state.webhook_policy
    return policy


PolicyDep = Annotated[WebhookPolicy, Depends(_policy)]


def _read(endpoint: WebhookEndpoint, now: datetime) -> WebhookEndpointRead:
    return WebhookEndpointRead(
        id=endpoint.id,
        url=endpoint.url,
        events=[WebhookEvent(event) for event in endpoint.events],
        description=endpoint.description,
        is_active=endpoint.is_active,
        failing_since=endpoint.failing_since,
        disabled_reason=(
            EndpointDisabledReason(endpoint.disabled_reason) if endpoint.disabled_reason else None
        ),
        disabled_at=endpoint.disabled_at,
        secret_hint=endpoint.secret_hint,
        previous_secret_expires_at=service.previous_secret_until(endpoint, now),
        created_at=endpoint.created_at,
        updated_at=endpoint.updated_at,
    )


def _delivery(delivery: WebhookDelivery) -> WebhookDeliveryRead:
    return WebhookDeliveryRead(
        id=delivery.id,
        event=PING_EVENT if delivery.event == PING_EVENT else WebhookEvent(delivery.event),
        shipment_id=delivery.shipment_id,
        state=delivery.state,
        attempts=delivery.attempts,
        last_attempt_at=delivery.last_attempt_at,
        last_status_code=delivery.last_status_code,
        last_error=delivery.last_error,
        next_attempt_at=delivery.next_attempt_at if delivery.state == "pending" else None,
        delivered_at=delivery.delivered_at,
        created_at=delivery.created_at,
    )


def _account(principal: Principal) -> uuid.UUID:
    assert principal.account_id is not None  # noqa: S101 - require_account guarantees it
    return principal.account_id


def _no_store(response: Response) -> Response:
    # The answer holds a signing secret: no cache may keep it.
    response.headers["Cache-Control"] = "no-store"
    return response


async def _replay_with_secret(
    claim: IdempotencyClaim,
    session: SessionDep,
    endpoint_id: uuid.UUID,
    account_id: uuid.UUID,
    policy: WebhookPolicy,
) -> Response:
    """The stored answer keeps no secret (decision 0202): the endpoint's own is put back, and
    only while it is still the one that answer showed."""
    secret = await service.secret_for_replay(
        session,
        endpoint_id,
        account_id,
        is_first=lambda candidate: claim.holds(secret=candidate),
        policy=policy,
    )
    return _no_store(claim.replay_with(secret=secret))


RETRY_DESCRIPTION = (
    "\n\nSafe to retry with an `Idempotency-Key`: a repeat answers with the first answer, "
    "the same secret included, and `Idempotent-Replayed: true`. The secret is not kept with "
    "the stored answer but read from the endpoint, so once the endpoint is deleted or its "
    "secret rotated (again) a repeat is `409` (`replay-unavailable`) instead."
)


@router.post(
    "",
    status_code=201,
    response_model=WebhookEndpointCreated,
    summary="Register a webhook endpoint",
    description=(
        "The answer holds the signing `secret`: it is shown this once." + RETRY_DESCRIPTION
    ),
    responses={
        201: {"description": "The endpoint and its secret.", "links": CREATED_LINKS},
        **problem_responses(401, 403, 409, 422),
    },
)
async def create_endpoint(
    body: WebhookEndpointCreate,
    request: Request,
    principal: Manager,
    session: SessionDep,
    clock: ClockDep,
    policy: PolicyDep,
    idempotency: IdempotencyDep,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    now = clock.now()
    account_id = _account(principal)
    async with idempotency.guard(
        request, session, scope=str(account_id), key=idempotency_key, now=now
    ) as claim:
        if claim.replay is not None:
            endpoint_id = uuid.UUID(claim.replayed_content()["id"])
            return await _replay_with_secret(claim, session, endpoint_id, account_id, policy)
        endpoint, secret = await service.create_endpoint(
            session, account_id, body, policy=policy, now=now
        )
        created = await claim.complete(
            201,
            WebhookEndpointCreated(**_read(endpoint, now).model_dump(), secret=secret),
            resource_id=endpoint.id,
            location=f"/v1/webhook-endpoints/{endpoint.id}",
            withhold=("secret",),
        )
    return _no_store(created)


@router.get(
    "",
    response_model=Page[WebhookEndpointRead],
    summary="List webhook endpoints",
    responses=problem_responses(401, 403, 422),
)
async def list_endpoints(
    principal: Manager, session: SessionDep, page: PageParamsDep, clock: ClockDep
) -> Page[WebhookEndpointRead]:
    rows, cursor = await service.list_endpoints(session, _account(principal), page)
    now = clock.now()
    return Page[WebhookEndpointRead](data=[_read(row, now) for row in rows], next_cursor=cursor)


@router.get(
    "/{endpoint_id}",
    response_model=WebhookEndpointRead,
    summary="Get a webhook endpoint",
    responses=problem_responses(401, 403, 404, 422),
)
async def get_endpoint(
    endpoint_id: uuid.UUID, principal: Manager, session: SessionDep, clock: ClockDep
) -> WebhookEndpointRead:
    endpoint = await service.get_endpoint(session, endpoint_id, _account(principal))
    return _read(endpoint, clock.now())


@router.patch(
    "/{endpoint_id}",
    response_model=WebhookEndpointRead,
    summary="Change a webhook endpoint (URL, events, description, active)",
    responses=problem_responses(401, 403, 404, 422),
)
async def update_endpoint(
    endpoint_id: uuid.UUID,
    body: WebhookEndpointUpdate,
    principal: Manager,
    session: SessionDep,
    clock: ClockDep,
    policy: PolicyDep,
) -> WebhookEndpointRead:
    now = clock.now()
    endpoint = await service.update_endpoint(
        session, endpoint_id, _account(principal), body, policy=policy, now=now
    )
    return _read(endpoint, now)


@router.post(
    "/{endpoint_id}/rotate-secret",
    response_model=WebhookSecretRotated,
    summary="Rotate the signing secret",
    description=(
        "Makes a new signing secret, shown this once. Deliveries are signed with it at once "
        "and, for `previous_secret_valid_hours` (24 unless given), with the secret before too: "
        "`Parcelpro-Signature` then has two `v1` values, and a receiver that accepts a "
        "delivery when any `v1` matches can switch to the new secret without missing one."
        + RETRY_DESCRIPTION
    ),
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def rotate_secret(
    endpoint_id: uuid.UUID,
    request: Request,
    principal: Manager,
    session: SessionDep,
    clock: ClockDep,
    policy: PolicyDep,
    idempotency: IdempotencyDep,
    body: WebhookSecretRotation | None = None,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    now = clock.now()
    account_id = _account(principal)
    async with idempotency.guard(
        request, session, scope=str(account_id), key=idempotency_key, now=now
    ) as claim:
        if claim.replay is not None:
            return await _replay_with_secret(claim, session, endpoint_id, account_id, policy)
        endpoint, secret = await service.rotate_secret(
            session,
            endpoint_id,
            account_id,
            previous_valid_hours=(body or WebhookSecretRotation()).previous_secret_valid_hours,
            policy=policy,
            now=now,
        )
        rotated = await claim.complete(
            200,
            WebhookSecretRotated(**_read(endpoint, now).model_dump(), secret=secret),
            resource_id=endpoint.id,
            withhold=("secret",),
        )
    return _no_store(rotated)


@router.delete(
    "/{endpoint_id}",
    status_code=204,
    response_class=Response,
    summary="Delete a webhook endpoint and its delivery log",
    responses=problem_responses(401, 403, 404, 422),
)
async def delete_endpoint(endpoint_id: uuid.UUID, principal: Manager, session: SessionDep) -> None:
    await service.delete_endpoint(session, endpoint_id, _account(principal))


@router.get(
    "/{endpoint_id}/deliveries",
    response_model=Page[WebhookDeliveryRead],
    summary="The endpoint's delivery log, newest first",
    responses=problem_responses(401, 403, 404, 422),
)
async def list_deliveries(
    endpoint_id: uuid.UUID, principal: Manager, session: SessionDep, page: PageParamsDep
) -> Page[WebhookDeliveryRead]:
    rows, cursor = await service.list_deliveries(session, endpoint_id, _account(principal), page)
    return Page[WebhookDeliveryRead](data=[_delivery(row) for row in rows], next_cursor=cursor)


@router.post(
    "/{endpoint_id}/deliveries/{delivery_id}/redeliver",
    status_code=202,
    response_model=WebhookDeliveryRead,
    summary="Send a delivery again",
    description=(
        "Queues a `delivered` or `failed` delivery of the log again, due at once and retried "
        "as a new one would be: the same event, payload and `Parcelpro-Delivery` id, signed "
        "with the endpoint's current secret. For events your receiver missed while it was "
        "down. 409 while the delivery is still queued, when its payload was erased, or while "
        "the endpoint is paused."
    ),
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def redeliver(
    endpoint_id: uuid.UUID,
    delivery_id: uuid.UUID,
    principal: Manager,
    session: SessionDep,
    clock: ClockDep,
    outboxes: OutboxesDep,
) -> WebhookDeliveryRead:
    delivery = await service.redeliver(
        session,
        endpoint_id,
        delivery_id,
        _account(principal),
        retry_window=outboxes.webhook_retry,
        now=clock.now(),
    )
    return _delivery(delivery)


@router.post(
    "/{endpoint_id}/ping",
    status_code=202,
    response_model=WebhookDeliveryRead,
    summary="Send the endpoint a test delivery",
    description=(
        "Queues a `ping` delivery, due at once: a POST signed with the endpoint's secret like "
        'every event, with `Parcelpro-Event: ping` and the body `{id, type: "ping", '
        "created_at, data: {webhook_endpoint: {id}}}`, retried and kept in the delivery log "
        "as any delivery is. To check a receiver and its signature check before shipments "
        "flow. 409 while the endpoint is paused or a ping to it is still queued."
    ),
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def ping(
    endpoint_id: uuid.UUID,
    principal: Manager,
    session: SessionDep,
    clock: ClockDep,
    outboxes: OutboxesDep,
) -> WebhookDeliveryRead:
    delivery = await service.ping(
        session,
        endpoint_id,
        _account(principal),
        retry_window=outboxes.webhook_retry,
        now=clock.now(),
    )
    return _delivery(delivery)
