"""Bodies of the webhook-endpoint routes."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator

from libs.common.validation import Integer, NotNull
from services.shipping_api.vocabulary import PingEvent, WebhookEvent
from services.shipping_api.webhooks.outbox import EndpointDisabledReason

URL_DESCRIPTION: dict[str, Any] = dict(
    max_length=2048,
    description=(
        "Where we POST events: a public http(s) URL. Addresses in private, loopback, "
        "link-local or metadata ranges are refused, and redirects are not followed."
    ),
    examples=["https://shop.example.nl/parcelpro/webhook"],
)
EVENTS_DESCRIPTION: dict[str, Any] = dict(
    min_length=1,
    max_length=len(WebhookEvent),
    description="The events to receive.",
    examples=[["shipment.handed_to_carrier", "shipment.delivered"]],
)


def _unique(events: list[WebhookEvent] | None) -> list[WebhookEvent] | None:
    return list(dict.fromkeys(events)) if events is not None else None


class WebhookEndpointCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(**URL_DESCRIPTION)
    events: list[WebhookEvent] = Field(**EVENTS_DESCRIPTION)
    description: str | None = Field(None, max_length=200, examples=["Order status sync"])

    _dedupe = field_validator("events")(_unique)


class WebhookEndpointUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: Annotated[str | None, NotNull()] = Field(None, **URL_DESCRIPTION)
    events: Annotated[list[WebhookEvent] | None, NotNull()] = Field(None, **EVENTS_DESCRIPTION)
    description: str | None = Field(None, max_length=200, description="`null` removes it.")
    is_active: Annotated[StrictBool | None, NotNull()] = Field(
        None,
        description=(
            "Switch the endpoint off (false) or on again (true). While it is off, no events are "
            "queued for it and deliveries still queued are not sent (they end `failed`, and can "
            "be redelivered once it is on again). Switching on an endpoint that we switched off "
            "(`disabled_reason`) clears `disabled_reason`, `disabled_at` and `failing_since`."
        ),
    )

    _dedupe = field_validator("events")(_unique)


class WebhookEndpointRead(BaseModel):
    id: uuid.UUID
    url: str
    events: list[WebhookEvent]
    description: str | None
    is_active: bool = Field(
        description=(
            "Whether events are sent to the endpoint. `false` when you switched it off, or when "
            "we did because its deliveries kept failing (see `disabled_reason`)."
        )
    )
    failing_since: datetime | None = Field(
        description=(
            "When the first of the delivery attempts that failed since the last successful one "
            "was made; `null` when the last attempt succeeded (or none was made). Once it lies "
            "more than 5 days back (the platform's limit), the next failed attempt switches "
            "the endpoint off. A successful delivery, a new `url` or switching the endpoint on "
            "clears it."
        ),
        examples=["2026-11-20T09:00:00Z"],
    )
    disabled_reason: EndpointDisabledReason | None = Field(
        description=(
            "Why we switched the endpoint off: `failing`, every delivery attempt had failed "
            "since `failing_since` for more than 5 days. Its queued deliveries ended `failed` "
            "and can be redelivered once the endpoint is on again: fix the receiver, then set "
            "`is_active` to true. `null` while it is on, or when you switched it off yourself."
        ),
        examples=["failing"],
    )
    disabled_at: datetime | None = Field(
        description="When we switched the endpoint off (with `disabled_reason`); else `null`.",
        examples=["2026-11-25T09:00:00Z"],
    )
    secret_hint: str = Field(description="The start of the signing secret, to tell keys apart.")
    previous_secret_expires_at: datetime | None = Field(
        description=(
            "After a rotation of the secret: until when deliveries carry a second `v1` "
            "signature, made with the secret before. `null` when they carry one."
        )
    )
    created_at: datetime
    updated_at: datetime


class WebhookEndpointCreated(WebhookEndpointRead):
    secret: str = Field(
        description=(
            "Shown once: verify `Parcelpro-Signature: t=<unix>,v1=<hex>`, the HMAC-SHA256 of "
            "`<t>.<raw body>` with this secret. For a while after a rotation of the secret the "
            "header has a second `v1`: accept a delivery when one of them matches."
        ),
        examples=["whsec_mQ2x…"],
    )


class WebhookSecretRotation(BaseModel):
    model_config = ConfigDict(extra="forbid")

    previous_secret_valid_hours: Integer = Field(
        24,
        ge=0,
        le=72,
        description=(
            "How long deliveries are signed with the current secret as well, while your "
            "receiver switches to the new one. `0` stops it at once (for a secret that leaked)."
        ),
    )


class WebhookSecretRotated(WebhookEndpointRead):
    secret: str = Field(description="The new signing secret, shown once.", examples=["whsec_Zk3p…"])


class WebhookDeliveryRead(BaseModel):
    id: uuid.UUID
    event: WebhookEvent | PingEvent = Field(
        description="The event delivered: a shipment's, or `ping` for a test delivery."
    )
    shipment_id: uuid.UUID | None
    state: str = Field(description="`pending` (retrying), `delivered` or `failed` (gave up).")
    attempts: int
    last_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    next_attempt_at: datetime | None
    delivered_at: datetime | None
    created_at: datetime
