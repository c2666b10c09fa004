"""Token responses and the bodies of logout, verification and reset."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from libs.common.validation import Email
from services.identity_api.accounts.schemas import PASSWORD_FIELD


class GrantType(StrEnum):
    PASSWORD = "password"  # noqa: S105 - a name, not a secret
    REFRESH_TOKEN = "refresh_token"  # noqa: S105 - a name, not a secret
    CLIENT_CREDENTIALS = "client_credentials"


class TokenResponse(BaseModel):
    access_token: str = Field(description="A JWT (EdDSA); send as `Authorization: Bearer ...`.")
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - a name, not a secret
    expires_in: int = Field(description="Seconds until the access token expires.", examples=[900])
    refresh_token: str | None = Field(
        None,
        description="Single use: exchange it for new tokens with `grant_type=refresh_token`. "
        "Absent for the client-credentials grant.",
    )
    scope: str = Field(description="Granted scopes, space-separated.", examples=["shipments:read"])


class LogoutRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    refresh_token: str = Field(
        min_length=1, max_length=200, description="The refresh token of the login to end."
    )


class EmailVerification(BaseModel):
    model_config = ConfigDict(extra="forbid")

    token: str = Field(min_length=1, max_length=200, description="The token from the mailed link.")


class PasswordResetRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: Email


class PasswordReset(BaseModel):
    model_config = ConfigDict(extra="forbid")

    token: str = Field(min_length=1, max_length=200, description="The token from the mailed link.")
    new_password: str = PASSWORD_FIELD


class Accepted(BaseModel):
    detail: str = Field(examples=["If the address has an account, a link is on its way."])
