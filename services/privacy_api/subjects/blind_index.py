"""Keyed blind indexes: find a person's rows by e-mail or phone without scanning plaintext."""

from __future__ import annotations

import hashlib
import hmac


def blind_index(key: str, kind: str, value: str) -> str:
    """HMAC-SHA256 of the normalised value; e-mail addresses match case-insensitively."""
    normalised = value.strip().lower() if kind == "email" else value.strip()
    message = f"{kind}:{normalised}".encode()
    return hmac.new(key.encode(), message, hashlib.sha256).hexdigest()


def email_index(key: str, email: str | None) -> str | None:
    return blind_index(key, "email", email) if email else None


def phone_index(key: str, phone: str | None) -> str | None:
    return blind_index(key, "phone", phone) if phone else None
