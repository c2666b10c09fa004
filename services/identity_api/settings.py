"""Settings of identity_api (environment variables prefixed ``IDENTITY_``)."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from libs.common.settings import BaseServiceSettings


class IdentitySettings(BaseServiceSettings):
    model_config = SettingsConfigDict(
        env_prefix="IDENTITY_", extra="ignore", populate_by_name=True, validate_default=True
    )

    service_name = "identity"
    default_port = 8001
