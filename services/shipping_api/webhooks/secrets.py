"""Webhook signing secrets: generated here, shown once, kept encrypted (AES-GCM) because they
are needed again to sign every delivery."""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
from collections.abc import Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

SECRET_PREFIX = "whsec_"  # noqa: S105 - a prefix, not a secret


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def secret_hint(secret: str) -> str:
    return secret[: len(SECRET_PREFIX) + 4] + "…"


def _aead(key: str) -> AESGCM:
    return AESGCM(hashlib.sha256(b"parcelpro-webhook-secrets:" + key.encode()).digest())


class SecretBox:
    """Seals secrets with the active key and opens them with it or with any previous key.

    Previous keys are what a key rotation needs (decision 0213): while they are listed, secrets
    sealed before the switch still open, and :meth:`reseal` moves each to the active key. A
    sealed value names no key; AES-GCM's tag tells which key opens it.
    """

    def __init__(self, key: str, previous: Sequence[str] = ()) -> None:
        self._active = _aead(key)
        self._previous = tuple(_aead(old) for old in dict.fromkeys(previous) if old != key)

    def seal(self, secret: str, *, associated: bytes) -> str:
        nonce = os.urandom(12)
        sealed = self._active.encrypt(nonce, secret.encode(), associated)
        return base64.urlsafe_b64encode(nonce + sealed).decode()

    def open(self, ciphertext: str, *, associated: bytes) -> str | None:
        """The secret, or None when no configured key opens the value."""
        return self._open(ciphertext, associated)[0]

    def reseal(self, ciphertext: str, *, associated: bytes) -> str | None:
        """The same secret sealed with the active key: ``ciphertext`` itself when it already is,
        None when no configured key opens it."""
        secret, by_active = self._open(ciphertext, associated)
        if by_active:
            return ciphertext
        return None if secret is None else self.seal(secret, associated=associated)

    def _open(self, ciphertext: str, associated: bytes) -> tuple[str | None, bool]:
        try:
            raw = base64.urlsafe_b64decode(ciphertext.encode())
        except ValueError:
            return None, False
        for aead in (self._active, *self._previous):
            try:
                return aead.decrypt(raw[:12], raw[12:], associated).decode(), aead is self._active
            except (InvalidTag, ValueError):
                continue
        return None, False
