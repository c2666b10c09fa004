"""Settings of privacy_api (environment variables prefixed ``PRIVACY_``)."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from libs.common.settings import BaseServiceSettings


class PrivacySettings(BaseServiceSettings):
    model_config = SettingsConfigDict(
        env_prefix="PRIVACY_", extra="ignore", populate_by_name=True, validate_default=True
    )

    service_name = "privacy"
    default_port = 8003
