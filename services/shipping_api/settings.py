"""Settings of shipping_api (environment variables prefixed ``SHIPPING_``)."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from libs.common.settings import BaseServiceSettings


class ShippingSettings(BaseServiceSettings):
    model_config = SettingsConfigDict(
        env_prefix="SHIPPING_", extra="ignore", populate_by_name=True, validate_default=True
    )

    service_name = "shipping"
    default_port = 8002
