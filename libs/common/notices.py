"""Notices to account holders: what a service may ask identity to mail an account holder
(``POST /internal/v1/accounts/{account_id}/notices``, decision 0112). The sender queues them,
identity composes and mails them; both read the kinds from here."""

from __future__ import annotations

from enum import StrEnum


class NoticeKind(StrEnum):
    WEBHOOK_ENDPOINT_SWITCHED_OFF = "webhook_endpoint_switched_off"
    """Shipping switched off a webhook endpoint whose deliveries kept failing (decision 0206)."""
