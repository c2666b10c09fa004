"""Webhook signing secrets: generated here, shown once, kept encrypted (AES-GCM) because they
are needed again to sign every delivery."""

from __future__ import annotations

import base64
import hashlib
import os
import secrets

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

SECRET_PREFIX = "whsec_"  # noqa: S105 - a prefix, not a secret


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def secret_hint(secret: str) -> str:
    return secret[: len(SECRET_PREFIX) + 4] + "…"


class SecretBox:
    def __init__(self, key: str) -> None:
        self._aead = AESGCM(hashlib.sha256(b"parcelpro-webhook-secrets:" + key.encode()).digest())

    def seal(self, secret: str, *, associated: bytes) -> str:
        nonce = os.urandom(12)
        sealed = self._aead.encrypt(nonce, secret.encode(), associated)
        return base64.urlsafe_b64encode(nonce + sealed).decode()

    def open(self, ciphertext: str, *, associated: bytes) -> str | None:
        try:
            raw = base64.urlsafe_b64decode(ciphertext.encode())
            return self._aead.decrypt(raw[:12], raw[12:], associated).decode()
        except (InvalidTag, ValueError):
            return None
