"""Settings of shipping_api (environment variables prefixed ``SHIPPING_``)."""

from __future__ import annotations

from pydantic import Field, model_validator
from pydantic_settings import SettingsConfigDict

from libs.common.settings import (
    AUDIT_LOG_RETENTION_DAYS,
    MINIMUM_AUDIT_LOG_RETENTION_DAYS,
    BaseServiceSettings,
)
from services.shipping_api.webhooks.secrets import SecretBox

CARRIER_NAMES = ("postnl", "dhl", "dpd", "gls", "ups")
# Privacy statement: recipient data is kept "gedurende een periode van ten minste 3 maanden".
# Three calendar months last 89 to 92 days, so only 92 keeps that promise on every date.
MINIMUM_RECIPIENT_RETENTION_DAYS = 92
# Register: a shipment never delivered, returned or cancelled "is erased 6 months after its last
# status change", and it keeps its recipient at least as long as a delivered one (0208). The
# shortest six calendar months have 181 days and the purge runs daily, so 180 is the most that
# keeps that promise on every date.
MAXIMUM_RECIPIENT_RETENTION_DAYS = 180


class ShippingSettings(BaseServiceSettings):
    model_config = SettingsConfigDict(
        env_prefix="SHIPPING_", extra="ignore", populate_by_name=True, validate_default=True
    )

    service_name = "shipping"
    default_port = 8002

    recipient_retention_days: int = MINIMUM_RECIPIENT_RETENTION_DAYS
    """Days recipient personal data is kept after a shipment reaches a final status (92 to 180,
    checked below)."""
    recipient_abandoned_after_days: int = MAXIMUM_RECIPIENT_RETENTION_DAYS
    """Days without a status change after which a shipment that never reached a final status
    counts as abandoned: its recipient data is erased then (and never before
    ``recipient_retention_days`` have passed since that change; decision 0208)."""
    purge_in_process: bool | None = None
    """Run the recipient purge inside the service. Defaults to true in development only;
    elsewhere a scheduled ``python -m services.shipping_api purge`` (a CronJob) does it."""
    purge_interval_seconds: float = Field(3600.0, gt=0, le=86_400)
    purge_batch_size: int = Field(1000, ge=1, le=50_000)
    purge_concurrency: int = Field(2, ge=1, le=8)
    """Sessions erasing batches side by side; SQLite has one writer, so it always uses one."""

    blind_index_key: str = ""
    """Key of the keyed blind index over recipients' e-mail and phone (HMAC-SHA256)."""
    webhook_secret_key: str = ""
    """Key that encrypts webhook signing secrets at rest (AES-GCM)."""
    webhook_secret_previous_keys: list[str] = Field(default_factory=list)
    """Earlier webhook-secret keys, as a JSON list: they only open, while a rotation moves the
    stored secrets to ``webhook_secret_key`` (``reseal-webhook-secrets``, decision 0213)."""
    carrier_secrets: dict[str, str] = Field(default_factory=dict)
    """Per-carrier HMAC secret of pushed status events, as JSON: ``{"postnl": "..."}``."""

    webhook_allow_loopback: bool = False
    """Development only: allow webhook receivers on 127.0.0.0/8 and ::1."""
    webhook_timeout_seconds: float = Field(10.0, gt=0, le=60)
    webhook_retry_hours: float = Field(24.0, gt=0, le=72)
    webhook_log_retention_days: int = Field(30, ge=1, le=365)
    webhook_disable_after_days: float = Field(5.0, ge=3, le=30)
    """``SHIPPING_WEBHOOK_DISABLE_AFTER_DAYS``: an endpoint whose deliveries have all failed for
    this long is switched off at its next failure (decision 0206). At least 3 days, the longest
    retry window, so that the retries of one event never switch an endpoint off by themselves."""
    audit_log_retention_days: int = Field(
        AUDIT_LOG_RETENTION_DAYS, ge=MINIMUM_AUDIT_LOG_RETENTION_DAYS, le=AUDIT_LOG_RETENTION_DAYS
    )
    """``SHIPPING_AUDIT_LOG_RETENTION_DAYS``: support access log entries (staff reads of
    shipments) are deleted this long after the read; the register promises audit logs five
    years, so more is refused."""
    outbox_worker_enabled: bool = True
    outbox_poll_seconds: float = Field(1.0, gt=0, le=60)
    outbox_batch_size: int = Field(50, ge=1, le=1000)
    mail_retry_hours: float = Field(24.0, gt=0, le=72)

    tracking_rate_limit: str = "60/minute"
    """Public tracking look-ups per client address."""
    tracking_cache_seconds: float = Field(2.0, ge=0, le=60)
    """How long a public tracking answer (status and dates) is reused; 0 turns it off."""
    tracking_postcode_rate_limit: str = "10/hour"
    """Wrong postcodes per tracking code (so a postcode cannot be guessed); right ones are free."""
    tracking_page_url: str = Field("", pattern=r"^$|\{tracking_code\}")
    """``SHIPPING_TRACKING_PAGE_URL``: the recipients' track & trace page that mails link to,
    with ``{tracking_code}`` and optionally ``{postcode}`` in it. Empty: the public API's
    ``{PUBLIC_BASE_URL}/v1/tracking/{tracking_code}?postcode={postcode}``."""
    sender_cache_seconds: float = Field(60.0, ge=0, le=3600)
    idempotency_ttl_hours: float = Field(24.0, gt=0, le=168)

    @model_validator(mode="after")
    def _check_privacy_and_secrets(self) -> ShippingSettings:
        # A setting outside what the privacy statement and the register promise would break
        # that promise without anyone noticing, so start-up refuses it.
        for name, days in (
            ("SHIPPING_RECIPIENT_RETENTION_DAYS", self.recipient_retention_days),
            ("SHIPPING_RECIPIENT_ABANDONED_AFTER_DAYS", self.recipient_abandoned_after_days),
        ):
            if days < MINIMUM_RECIPIENT_RETENTION_DAYS:
                raise ValueError(
                    f"{name} must be at least {MINIMUM_RECIPIENT_RETENTION_DAYS} (the privacy "
                    "statement promises at least three months)"
                )
            if days > MAXIMUM_RECIPIENT_RETENTION_DAYS:
                raise ValueError(
                    f"{name} must be at most {MAXIMUM_RECIPIENT_RETENTION_DAYS} (the register "
                    "promises that a shipment never delivered is erased six months after its "
                    "last status change)"
                )
        if self.purge_in_process is None:
            self.purge_in_process = self.environment == "development"
        production = self.environment == "production"
        if production:
            missing = [
                name
                for name, value in (
                    ("SHIPPING_BLIND_INDEX_KEY", self.blind_index_key),
                    ("SHIPPING_WEBHOOK_SECRET_KEY", self.webhook_secret_key),
                    *(
                        (f"SHIPPING_WEBHOOK_SECRET_PREVIOUS_KEYS[{index}]", value)
                        for index, value in enumerate(self.webhook_secret_previous_keys)
                    ),
                )
                if len(value) < 32 or value.startswith("dev-only-")
            ]
            missing += [
                f"SHIPPING_CARRIER_SECRETS[{carrier}]"
                for carrier in CARRIER_NAMES
                if len(self.carrier_secrets.get(carrier, "")) < 32
                or self.carrier_secrets[carrier].startswith("dev-only-")
            ]
            if missing:
                raise ValueError(
                    "production needs real secrets (32+ characters): " + ", ".join(missing)
                )
            if self.webhook_allow_loopback:
                raise ValueError("SHIPPING_WEBHOOK_ALLOW_LOOPBACK is a development setting")
        else:
            # Development and test installations get well-known keys, refused in production.
            self.blind_index_key = self.blind_index_key or "dev-only-blind-index-key"
            self.webhook_secret_key = self.webhook_secret_key or "dev-only-webhook-secret-key"
            self.carrier_secrets = {
                carrier: self.carrier_secrets.get(carrier) or f"dev-only-carrier-{carrier}"
                for carrier in CARRIER_NAMES
            }
        return self

    def webhook_secrets(self) -> SecretBox:
        return SecretBox(self.webhook_secret_key, self.webhook_secret_previous_keys)
