"""Settings of identity_api (environment variables prefixed ``IDENTITY_``)."""

from __future__ import annotations

import base64
import hashlib
from typing import Any
from urllib.parse import urlencode

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_settings import SettingsConfigDict

from libs.common.auth import ServiceScope
from libs.common.crypto import FieldCipher, decode_key
from libs.common.settings import (
    AUDIT_LOG_RETENTION_DAYS,
    MINIMUM_AUDIT_LOG_RETENTION_DAYS,
    BaseServiceSettings,
)

DEV_FIELD_KEY_ID = "dev-only"
# Derived, not random, so every development process (and test) reads what another wrote.
DEV_FIELD_KEY = base64.b64encode(hashlib.sha256(b"parcelpro dev-only field key").digest()).decode()
DEV_HASH_KEY = base64.b64encode(hashlib.sha256(b"parcelpro dev-only hash key").digest()).decode()
DEV_SECRET_PREFIX = "dev-only-"  # noqa: S105 - a name, not a secret


class ServiceClient(BaseModel):
    """A Parcel Pro service allowed to use the client-credentials grant."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    secret: str = Field(min_length=16)
    scopes: tuple[ServiceScope, ...]


def _dev_service_clients() -> dict[str, ServiceClient]:
    scopes = {
        "shipping_api": (
            ServiceScope.INTROSPECT,
            ServiceScope.ACCOUNTS_READ,
            ServiceScope.CONSENTS_READ,
            ServiceScope.ACCOUNTS_NOTIFY,
        ),
        "privacy_api": (
            ServiceScope.INTROSPECT,
            ServiceScope.ACCOUNTS_READ,
            ServiceScope.SUBJECTS,
        ),
    }
    return {
        client_id: ServiceClient(secret=f"{DEV_SECRET_PREFIX}{client_id}", scopes=granted)
        for client_id, granted in scopes.items()
    }


class IdentitySettings(BaseServiceSettings):
    model_config = SettingsConfigDict(
        env_prefix="IDENTITY_", extra="ignore", populate_by_name=True, validate_default=True
    )

    service_name = "identity"
    default_port = 8001

    field_encryption_keys: dict[str, str] = Field(default_factory=dict)
    """``IDENTITY_FIELD_ENCRYPTION_KEYS``: JSON ``{"<key id>": "<base64 32-byte key>"}``.
    Keep retired keys listed until ``reencrypt-fields`` has run."""
    field_encryption_active_key: str = ""
    """Key id that seals new values; defaults to the last key listed."""
    hash_key: str = ""
    """``IDENTITY_HASH_KEY``: base64 HMAC key for API-key, refresh- and mail-token hashes."""
    service_clients: dict[str, ServiceClient] = Field(default_factory=dict)
    """``IDENTITY_SERVICE_CLIENTS``: JSON ``{"shipping_api": {"secret": ..., "scopes": [...]}}``."""

    access_token_ttl_seconds: int = Field(900, ge=60, le=3600)
    service_token_ttl_seconds: int = Field(600, ge=60, le=3600)
    refresh_token_ttl_days: int = Field(30, ge=1, le=365)
    refresh_family_max_days: int = Field(90, ge=1, le=365)
    """``IDENTITY_REFRESH_FAMILY_MAX_DAYS``: a login ends this long after the password was
    entered, however often its refresh token is rotated; then the password is asked again."""
    signing_key_publish_ahead_seconds: int = Field(660, ge=0, le=86_400)
    """A new signing key is published this long before it signs (other services cache the
    JWKS for 10 minutes), so no token is ever signed by a key a verifier cannot know yet."""

    email_verification_ttl_hours: int = Field(48, ge=1, le=720)
    password_reset_ttl_minutes: int = Field(60, ge=5, le=1440)

    login_failures_per_account: str = "10/15 minutes"
    """Failed logins of one e-mail address from devices it never logged in on (and of each
    device it did, counted apart: decision 0105)."""
    login_failures_per_ip: str = "50/15 minutes"
    device_cookie_days: int = Field(180, ge=1, le=730)
    """``IDENTITY_DEVICE_COOKIE_DAYS``: how long a browser that logged in stays a known device
    of that login, whose attempts an attacker's failures cannot throttle."""
    mail_requests_per_address: str = "5/hour"
    registrations_per_ip: str = "30/hour"

    password_time_cost: int = Field(3, ge=1, le=20)
    password_memory_cost_kib: int = Field(65_536, ge=1024, le=1_048_576)
    password_parallelism: int = Field(4, ge=1, le=16)

    mail_outbox_worker: bool = True
    """Deliver queued mail from a background task (off in tests that deliver explicitly)."""
    mail_poll_seconds: float = Field(2.0, gt=0, le=300)
    mail_max_attempts: int = Field(25, ge=1, le=100)

    fiscal_retention_years: int = Field(7, ge=7, le=8)
    """``IDENTITY_FISCAL_RETENTION_YEARS``: how long an erased account's invoicing data is kept.
    The register promises "7 years after the financial year" (art. 52 AWR): fewer would break
    the law, and more than 8 outlives the promise even for this year's invoices."""
    security_event_retention_days: int = Field(365, ge=30, le=365)
    """``IDENTITY_SECURITY_EVENT_RETENTION_DAYS``: security events (with their IP address and user
    agent) are deleted this long after they happened; the register promises one year, so more
    is refused."""
    audit_log_retention_days: int = Field(
        AUDIT_LOG_RETENTION_DAYS, ge=MINIMUM_AUDIT_LOG_RETENTION_DAYS, le=AUDIT_LOG_RETENTION_DAYS
    )
    """``IDENTITY_AUDIT_LOG_RETENTION_DAYS``: staff access log entries are deleted this long after
    the read they record; the register promises audit logs five years, so more is refused."""

    @model_validator(mode="after")
    def _secrets(self) -> IdentitySettings:
        production = self.environment == "production"
        if not self.field_encryption_keys:
            if production:
                raise ValueError("IDENTITY_FIELD_ENCRYPTION_KEYS must be set in production")
            self.field_encryption_keys = {DEV_FIELD_KEY_ID: DEV_FIELD_KEY}
        if production and DEV_FIELD_KEY_ID in self.field_encryption_keys:
            raise ValueError("the development field-encryption key is refused in production")
        for value in self.field_encryption_keys.values():
            decode_key(value)
        if not self.field_encryption_active_key:
            self.field_encryption_active_key = list(self.field_encryption_keys)[-1]
        if self.field_encryption_active_key not in self.field_encryption_keys:
            raise ValueError("IDENTITY_FIELD_ENCRYPTION_ACTIVE_KEY names no configured key")
        if not self.hash_key:
            if production:
                raise ValueError("IDENTITY_HASH_KEY must be set in production")
            self.hash_key = DEV_HASH_KEY
        if production and self.hash_key == DEV_HASH_KEY:
            raise ValueError("the development hash key is refused in production")
        if len(base64.b64decode(self.hash_key)) < 32:
            raise ValueError("IDENTITY_HASH_KEY must be at least 32 bytes, base64-encoded")
        if not self.service_clients and not production:
            self.service_clients = _dev_service_clients()
        if production:
            weak = [
                client_id
                for client_id, client in self.service_clients.items()
                if client.secret.startswith(DEV_SECRET_PREFIX)
            ]
            if weak:
                raise ValueError(f"development client secrets refused in production: {weak}")
        return self

    def field_cipher(self) -> FieldCipher:
        return FieldCipher.from_base64(self.field_encryption_keys, self.field_encryption_active_key)

    def hash_key_bytes(self) -> bytes:
        return base64.b64decode(self.hash_key)

    def public_url(self, path: str, **query: Any) -> str:
        """A link into the frontend (mailed links), e.g. ``/verify-email?token=...``."""
        suffix = f"?{urlencode(query)}" if query else ""
        return f"{self.public_base_url.rstrip('/')}{path}{suffix}"
