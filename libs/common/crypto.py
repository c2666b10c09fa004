"""Field encryption at rest (AES-256-GCM with key ids) and keyed hashes of secrets.

An encrypted value carries the id of the key that sealed it (``aesgcm:<kid>:<base64>``), so keys
can be rotated: new values are sealed with the active key, old values stay readable as long as
their key is configured, and :meth:`FieldCipher.needs_rotation` finds what to re-encrypt.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
from collections.abc import Mapping

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_SCHEME = "aesgcm"
_NONCE_BYTES = 12
_KEY_ID = re.compile(r"^[A-Za-z0-9._-]{1,32}$")


class DecryptionError(Exception):
    """A value cannot be decrypted: unknown key id, tampered data or wrong context."""


def generate_key() -> str:
    """A new random AES-256 key, base64-encoded (for the settings)."""
    return base64.b64encode(AESGCM.generate_key(bit_length=256)).decode()


def decode_key(value: str) -> bytes:
    try:
        key = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("an encryption key is 32 bytes, base64-encoded") from exc
    if len(key) != 32:
        raise ValueError("an encryption key is 32 bytes (AES-256), base64-encoded")
    return key


class FieldCipher:
    """Seals and opens single column values; ``context`` binds a value to its row and column."""

    def __init__(self, keys: Mapping[str, bytes], active_key_id: str) -> None:
        if active_key_id not in keys:
            raise ValueError(f"the active key id {active_key_id!r} is not among the keys")
        for key_id, key in keys.items():
            if not _KEY_ID.fullmatch(key_id):
                raise ValueError(f"key id {key_id!r}: use 1-32 letters, digits, '.', '_' or '-'")
            if len(key) != 32:
                raise ValueError(f"key {key_id!r} is not 32 bytes (AES-256)")
        self._keys = {key_id: AESGCM(key) for key_id, key in keys.items()}
        self.active_key_id = active_key_id

    @classmethod
    def from_base64(cls, keys: Mapping[str, str], active_key_id: str) -> FieldCipher:
        return cls({key_id: decode_key(value) for key_id, value in keys.items()}, active_key_id)

    def encrypt(self, plaintext: str, *, context: str = "") -> str:
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._keys[self.active_key_id].encrypt(nonce, plaintext.encode(), context.encode())
        payload = base64.b64encode(nonce + sealed).decode()
        return f"{_SCHEME}:{self.active_key_id}:{payload}"

    def decrypt(self, value: str, *, context: str = "") -> str:
        key_id, data = self._split(value)
        aead = self._keys.get(key_id)
        if aead is None:
            raise DecryptionError(f"no key with id {key_id!r} is configured")
        try:
            return aead.decrypt(data[:_NONCE_BYTES], data[_NONCE_BYTES:], context.encode()).decode()
        except InvalidTag as exc:
            raise DecryptionError("the value was altered or belongs to another field") from exc

    def key_id_of(self, value: str) -> str:
        return self._split(value)[0]

    def needs_rotation(self, value: str) -> bool:
        return self.key_id_of(value) != self.active_key_id

    @staticmethod
    def _split(value: str) -> tuple[str, bytes]:
        scheme, _, rest = value.partition(":")
        key_id, _, payload = rest.partition(":")
        if scheme != _SCHEME or not key_id or not payload:
            raise DecryptionError("not a value sealed by FieldCipher")
        try:
            data = base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise DecryptionError("corrupt encrypted value") from exc
        if len(data) <= _NONCE_BYTES:
            raise DecryptionError("corrupt encrypted value")
        return key_id, data


def keyed_hash(key: bytes, value: str) -> str:
    """HMAC-SHA256 of a high-entropy secret (API key, refresh token): fast and enough, since
    the secret cannot be guessed; the key keeps a stolen table useless without the settings."""
    return hmac.new(key, value.encode(), hashlib.sha256).hexdigest()
