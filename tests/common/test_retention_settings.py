"""Retention settings stay within what the privacy statement and the register promise."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from libs.common.settings import BaseServiceSettings
from services.identity_api.settings import IdentitySettings
from services.privacy_api.settings import PrivacySettings
from services.shipping_api.settings import ShippingSettings

SERVICES: list[type[BaseServiceSettings]] = [IdentitySettings, ShippingSettings, PrivacySettings]

# (settings class, field, the furthest allowed value, the first refused one, what the error names)
BOUNDS: list[tuple[type[BaseServiceSettings], str, int, int, str]] = [
    # Register: requests "2 years after the request was closed".
    (PrivacySettings, "request_retention_days", 730, 731, "request_retention_days"),
    # Register: security events "1 year".
    (IdentitySettings, "security_event_retention_days", 365, 366, "security_event_retention_days"),
    # Register: invoicing data "7 years after the financial year" (art. 52 AWR).
    (IdentitySettings, "fiscal_retention_years", 7, 6, "fiscal_retention_years"),
    (IdentitySettings, "fiscal_retention_years", 8, 9, "fiscal_retention_years"),
    # Statement: recipient data "ten minste 3 maanden" (three months: up to 92 days).
    (ShippingSettings, "recipient_retention_days", 92, 91, "SHIPPING_RECIPIENT_RETENTION_DAYS"),
    (
        ShippingSettings,
        "recipient_abandoned_after_days",
        92,
        91,
        "SHIPPING_RECIPIENT_ABANDONED_AFTER_DAYS",
    ),
    # Register: "audit logs 5 years" (the shortest five years have 1826 days, less a day of a
    # daily purge).
    (IdentitySettings, "audit_log_retention_days", 1825, 1826, "audit_log_retention_days"),
    (ShippingSettings, "audit_log_retention_days", 1825, 1826, "audit_log_retention_days"),
    # Register: a shipment never delivered is erased "6 months after its last status change",
    # and never before the recipient retention has passed.
    (ShippingSettings, "recipient_retention_days", 180, 181, "SHIPPING_RECIPIENT_RETENTION_DAYS"),
    (
        ShippingSettings,
        "recipient_abandoned_after_days",
        180,
        181,
        "SHIPPING_RECIPIENT_ABANDONED_AFTER_DAYS",
    ),
]


def build(settings_class: type[BaseServiceSettings], **values: Any) -> BaseServiceSettings:
    return settings_class(environment="test", **values)


@pytest.mark.parametrize(
    ("settings_class", "name", "allowed", "refused", "named"),
    BOUNDS,
    ids=[f"{c.service_name}-{n}-{r}" for c, n, _, r, _ in BOUNDS],
)
def test_retention_beyond_the_promise_is_refused_naming_the_setting(
    settings_class: type[BaseServiceSettings], name: str, allowed: int, refused: int, named: str
) -> None:
    assert getattr(build(settings_class, **{name: allowed}), name) == allowed
    with pytest.raises(ValidationError, match=named):
        build(settings_class, **{name: refused})


@pytest.mark.parametrize("settings_class", SERVICES, ids=lambda c: c.service_name)
def test_request_log_retention_is_at_most_the_registers_90_days(
    settings_class: type[BaseServiceSettings],
) -> None:
    # Register: network and usage data (the statement's logs) "90 days".
    assert build(settings_class, request_log_retention_days=90).request_log_retention_days == 90
    with pytest.raises(ValidationError, match="request_log_retention_days"):
        build(settings_class, request_log_retention_days=91)


def test_privacy_request_retention_set_by_environment_is_refused_past_two_years(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PRIVACY_REQUEST_RETENTION_DAYS", "3650")
    with pytest.raises(ValidationError, match="request_retention_days"):
        PrivacySettings(environment="test")


@pytest.mark.parametrize(
    ("variable", "settings_class"),
    [
        ("IDENTITY_AUDIT_LOG_RETENTION_DAYS", IdentitySettings),
        ("SHIPPING_AUDIT_LOG_RETENTION_DAYS", ShippingSettings),
    ],
)
def test_staff_access_log_retention_set_by_environment_is_refused_past_five_years(
    monkeypatch: pytest.MonkeyPatch, variable: str, settings_class: type[BaseServiceSettings]
) -> None:
    monkeypatch.setenv(variable, "3650")
    with pytest.raises(ValidationError, match="audit_log_retention_days"):
        settings_class(environment="test")


def test_defaults_keep_every_promise() -> None:
    shipping = ShippingSettings(environment="test")
    assert (shipping.recipient_retention_days, shipping.recipient_abandoned_after_days) == (92, 180)
    assert PrivacySettings(environment="test").request_retention_days == 730
    identity = IdentitySettings(environment="test")
    assert (identity.security_event_retention_days, identity.fiscal_retention_years) == (365, 7)
    assert identity.request_log_retention_days == 90
    assert identity.audit_log_retention_days == shipping.audit_log_retention_days == 1825
