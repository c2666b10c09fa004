"""API-key schemas. The secret appears in exactly one response: the one that creates it."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator

from libs.common.auth import Scope
from libs.common.validation import NOT_BLANK
from services.identity_api.models import ApiKeyMode


class ApiKeyCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"name": "WooCommerce webshop", "scopes": ["shipments:read", "shipments:write"]}
            ]
        },
    )

    name: str = Field(
        min_length=1,
        max_length=100,
        pattern=NOT_BLANK,
        description="To recognise the key later.",
    )
    scopes: list[Scope] = Field(
        min_length=1,
        max_length=len(Scope),
        description="What the key may do; grant only what the integration needs.",
    )
    mode: ApiKeyMode = Field(
        ApiKeyMode.LIVE, description="`test` keys create shipments with the sandbox carrier."
    )

    @field_validator("name")
    @classmethod
    def _strip(cls, value: str) -> str:
        # The bound applies to the name as sent (as documented); trimmed afterwards.
        if not value.strip():
            raise ValueError("must not be blank")
        return value.strip()

    @field_validator("scopes")
    @classmethod
    def _unique(cls, value: list[Scope]) -> list[Scope]:
        return sorted(set(value))


class ApiKeyRead(BaseModel):
    id: uuid.UUID
    name: str
    prefix: str = Field(description="Public part of the key, to tell keys apart.")
    mode: ApiKeyMode
    scopes: list[Scope]
    created_at: datetime
    last_used_at: datetime | None = Field(description="Approximate (updated at most every minute).")
    revoked_at: datetime | None


class ApiKeyCreated(ApiKeyRead):
    key: str = Field(
        description="The API key. Shown only now: store it in your webshop's settings.",
        examples=["pp_live_3f9a1c2b7d4e_5Jq8...k2"],
    )


class IntrospectionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    token: str = Field(min_length=1, max_length=200, description="The API key to check.")


class Introspection(BaseModel):
    active: bool
    key_id: uuid.UUID | None = None
    account_id: uuid.UUID | None = None
    scopes: list[str] | None = None
    mode: ApiKeyMode | None = None
