"""Settings of privacy_api (environment variables prefixed ``PRIVACY_``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator
from pydantic_settings import SettingsConfigDict

from libs.common.settings import (
    AUDIT_LOG_RETENTION_DAYS,
    MINIMUM_AUDIT_LOG_RETENTION_DAYS,
    BaseServiceSettings,
)

DEV_BLIND_INDEX_KEY = "dev-only-privacy-blind-index-key"


class PrivacySettings(BaseServiceSettings):
    model_config = SettingsConfigDict(
        env_prefix="PRIVACY_", extra="ignore", populate_by_name=True, validate_default=True
    )

    service_name = "privacy"
    default_port = 8003

    blind_index_key: str = ""
    """HMAC key of the blind indexes on e-mail addresses and phone numbers (and of codes)."""
    privacy_officer_email: str = "privacy@parcelpro.nl"
    """Where deadline summaries and letter-request notices go (the Functionaris)."""

    export_dir: Path | None = None
    """Where export parts and ZIPs are written; ``<var_dir>/privacy-exports`` when unset. Every
    process of the service (API and workers) must see the same directory."""
    export_retention_days: int = Field(7, ge=1, le=90)
    """How long a finished export can be downloaded before it is deleted."""
    request_retention_days: int = Field(730, ge=30, le=730)
    """``PRIVACY_REQUEST_RETENTION_DAYS``: how long a closed request's contact details are kept as
    proof of handling (Art. 5(2)); the register promises "2 years after the request was
    closed", so more is refused."""
    outbox_retention_days: int = Field(30, ge=1, le=365)
    audit_log_retention_days: int = Field(
        AUDIT_LOG_RETENTION_DAYS, ge=MINIMUM_AUDIT_LOG_RETENTION_DAYS, le=AUDIT_LOG_RETENTION_DAYS
    )
    """``PRIVACY_AUDIT_LOG_RETENTION_DAYS``: audit log entries (staff actions on requests,
    disclosures and incidents) are deleted this long after the action; the register promises
    audit logs five years, so more is refused, and the database refuses to delete an entry
    younger than a year (decision 0305), so less is refused too."""

    worker_enabled: bool = True
    """Run the task worker inside the API process (besides ``python -m ... worker``)."""
    worker_poll_seconds: float = Field(1.0, gt=0, le=60)
    worker_concurrency: int = Field(4, ge=1, le=16)
    """Tasks one worker process carries out at the same time (each holds a lease)."""
    task_lease_seconds: int = Field(300, ge=5, le=3600)
    task_backoff_initial_seconds: float = Field(5.0, gt=0, le=3600)
    task_backoff_max_seconds: float = Field(900.0, gt=0, le=86400)
    maintenance_interval_seconds: float = Field(3600.0, gt=0, le=86400)
    """How often the worker purges expired exports, old outbox mail and idempotency keys."""

    request_create_limit: str = "5/hour"
    """Per client IP, for requests without an account (each one sends an e-mail)."""
    request_create_per_email_limit: str = "3/day"
    verify_limit: str = "20/hour"
    """Per client IP, across requests (the code itself allows 5 tries)."""

    @model_validator(mode="after")
    def _privacy_defaults(self) -> PrivacySettings:
        if not self.blind_index_key:
            if self.environment == "production":
                raise ValueError("PRIVACY_BLIND_INDEX_KEY must be set in production")
            self.blind_index_key = DEV_BLIND_INDEX_KEY
        if self.environment == "production" and (
            self.blind_index_key == DEV_BLIND_INDEX_KEY or len(self.blind_index_key) < 32
        ):
            raise ValueError("PRIVACY_BLIND_INDEX_KEY must be a real secret of 32+ characters")
        if self.export_dir is None:
            self.export_dir = self.var_dir / "privacy-exports"
        return self

    @property
    def exports_path(self) -> Path:
        assert self.export_dir is not None  # noqa: S101 - filled in by the validator
        return self.export_dir
