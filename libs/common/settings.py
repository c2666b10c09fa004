"""Settings shared by every service, read from the environment.

Service-specific settings carry the service's prefix (``IDENTITY_DATABASE_URL``); settings that
every process of one installation shares (``SMTP_URL``, ``REDIS_URL``, ``IDENTITY_URL`` ...) are
read without a prefix, so one environment file can configure the whole platform.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated, ClassVar, Literal

from pydantic import AliasChoices, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def _shared(name: str) -> AliasChoices:
    """An environment variable that every service reads under the same, unprefixed name."""
    return AliasChoices(name, name.lower())


def _split_csv(value: object) -> object:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


# Register (purpose "employment"): "audit logs 5 years". Five years last 1826 days (with one leap
# day) or 1827 (with two); a daily purge deletes an entry up to a day after its retention ends, so
# 1825 is the most a service may keep its staff access log and still never pass five years.
# Fewer than a year would leave too little to account for who read what.
AUDIT_LOG_RETENTION_DAYS = 1825
MINIMUM_AUDIT_LOG_RETENTION_DAYS = 365
# Register: "logs 90 days" (the request log's entries: IP address, time, page and the rest).
REQUEST_LOG_RETENTION_DAYS = 90


class BaseServiceSettings(BaseSettings):
    """Settings every service has. Subclasses set ``env_prefix`` and the class variables."""

    model_config = SettingsConfigDict(
        extra="ignore",
        populate_by_name=True,
        validate_default=True,
    )

    service_name: ClassVar[str]
    """Short name used in logs, the database schema and the SQLite file name."""
    default_port: ClassVar[int]

    environment: Literal["development", "test", "production"] = Field(
        "development", validation_alias=_shared("ENVIRONMENT")
    )
    var_dir: Path = Field(Path("var"), validation_alias=_shared("VAR_DIR"))
    database_url: str = ""
    """SQLAlchemy async URL. Empty means the embedded SQLite file ``<var_dir>/<service>.db``."""
    db_pool_size: int = Field(20, ge=1, le=200)
    db_max_overflow: int = Field(0, ge=0, le=200)
    """Connections opened beyond the pool are closed again when returned while the pool is
    full: under sustained load that is a new PostgreSQL backend per request. A fixed pool makes
    requests wait for a connection instead (docs/decisions/0701-performance-budget.md)."""
    db_direct_pool_size: int = Field(8, ge=1, le=100)
    """PostgreSQL only: at most this many asyncpg connections serve the hottest reads and
    creates without the ORM (``libs.common.driver.DirectStatements``), opened as needed.
    Creates that wait for one are sent together when it comes free (0710)."""
    migrate_on_start: bool | None = None
    """Run migrations before serving. Defaults to true on SQLite (the embedded setup)."""

    host: str = "127.0.0.1"
    port: int = 0
    log_level: str = Field("INFO", validation_alias=_shared("LOG_LEVEL"))
    trusted_proxies: Annotated[list[IPNetwork], NoDecode] = Field(
        default_factory=lambda: [
            ipaddress.ip_network("127.0.0.0/8"),
            ipaddress.ip_network("::1/128"),
        ],
        validation_alias=_shared("TRUSTED_PROXIES"),
    )
    """Peers whose ``X-Forwarded-For`` is believed (the gateway). Comma-separated CIDRs."""

    request_log_retention_days: int = Field(
        REQUEST_LOG_RETENTION_DAYS, ge=1, le=REQUEST_LOG_RETENTION_DAYS
    )
    """``<SVC>_REQUEST_LOG_RETENTION_DAYS``: stored request-log entries (IP address and the rest of
    the statement's logs) are deleted this long after the request; the register promises 90
    days, so more is refused."""
    request_log_to_db: bool = True
    request_log_batch_size: int = Field(500, ge=1, le=10_000)
    request_log_flush_seconds: float = Field(1.0, gt=0, le=60)

    identity_url: str = Field("http://127.0.0.1:8001", validation_alias=_shared("IDENTITY_URL"))
    shipping_url: str = Field("http://127.0.0.1:8002", validation_alias=_shared("SHIPPING_URL"))
    privacy_url: str = Field("http://127.0.0.1:8003", validation_alias=_shared("PRIVACY_URL"))
    public_base_url: str = Field(
        "http://localhost:8000", validation_alias=_shared("PUBLIC_BASE_URL")
    )
    jwt_issuer: str = Field("parcelpro", validation_alias=_shared("JWT_ISSUER"))

    api_key_cache_seconds: float = Field(
        30.0, gt=0, le=30, validation_alias=_shared("API_KEY_CACHE_SECONDS")
    )
    """How long an API-key check is cached; a revoked key stops working within this time."""

    service_client_secret: str = ""
    """Secret this service presents to identity's token endpoint (client credentials)."""

    smtp_url: str | None = Field(None, validation_alias=_shared("SMTP_URL"))
    mail_from: str = Field(
        "Parcel Pro <noreply@parcelpro.nl>", validation_alias=_shared("MAIL_FROM")
    )
    redis_url: str | None = Field(None, validation_alias=_shared("REDIS_URL"))
    rate_limit_per_account: str = Field(
        "6000/minute", validation_alias=_shared("RATE_LIMIT_PER_ACCOUNT")
    )
    """Requests to ``/v1`` per account (a login or any of its API keys) or staff member."""
    rate_limit_per_ip: str = Field("1200/minute", validation_alias=_shared("RATE_LIMIT_PER_IP"))
    """Requests to ``/v1`` without a valid credential, per client address."""

    docs_enabled: bool = Field(True, validation_alias=_shared("DOCS_ENABLED"))
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list, validation_alias=_shared("CORS_ORIGINS")
    )
    http_timeout_seconds: float = Field(10.0, gt=0, le=120)
    shutdown_timeout_seconds: int = Field(20, ge=1, le=300)

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _parse_networks(cls, value: object) -> object:
        value = _split_csv(value)
        if isinstance(value, list):
            return [ipaddress.ip_network(str(item), strict=False) for item in value]
        return value

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _parse_origins(cls, value: object) -> object:
        origins = _split_csv(value)
        if isinstance(origins, list) and "*" in origins:
            raise ValueError("CORS_ORIGINS must list origins; '*' is not allowed")
        return origins

    @model_validator(mode="after")
    def _fill_defaults(self) -> BaseServiceSettings:
        if not self.database_url:
            path = (self.var_dir / f"{self.service_name}.db").as_posix()
            self.database_url = f"sqlite+aiosqlite:///{path}"
        if self.migrate_on_start is None:
            self.migrate_on_start = self.is_sqlite
        if not self.port:
            self.port = self.default_port
        if not self.service_client_secret and self.environment != "production":
            # Development and test installations share a well-known secret; production must
            # configure a real one (identity refuses this value in production).
            self.service_client_secret = f"dev-only-{self.service_client_id}"
        return self

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def db_schema(self) -> str | None:
        """PostgreSQL schema owned by this service; SQLite has one file per service instead."""
        return None if self.is_sqlite else self.service_name

    @property
    def version_table(self) -> str:
        return f"{self.service_name}_alembic_version"

    @property
    def service_client_id(self) -> str:
        return f"{self.service_name}_api"
