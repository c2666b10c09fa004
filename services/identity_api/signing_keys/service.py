"""Signing-key management and token signing.

Keys are generated on first start and kept in the database (the private half sealed with the
field-encryption key), so every process of identity signs with the same key and a restart logs
nobody out. A rotation publishes the new key before it signs (verifiers cache the JWKS for
10 minutes) and keeps the old key published until the last token it signed has expired.
"""

from __future__ import annotations

import base64
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from libs.common.crypto import FieldCipher
from services.identity_api.models import SigningKey
from services.identity_api.signing_keys import repository

ALGORITHM = "EdDSA"
_CACHE_SECONDS = 60.0


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _b64url_decode(value: str) -> bytes:
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


def private_key_context(kid: str) -> str:
    return f"signing_keys.private_key:{kid}"


@dataclass(frozen=True, slots=True)
class LoadedKey:
    kid: str
    public_key: Ed25519PublicKey
    activates_at: datetime
    retires_at: datetime | None


@dataclass(frozen=True, slots=True)
class _Signer:
    kid: str
    private_key: Ed25519PrivateKey
    loaded_at: float
    valid_until: datetime | None
    """When a pending successor takes over: the cache is stale from then on."""


def jwk(key: SigningKey) -> dict[str, str]:
    return {
        "kty": "OKP",
        "crv": "Ed25519",
        "x": key.public_key,
        "kid": key.kid,
        "use": "sig",
        "alg": ALGORITHM,
    }


class SigningKeyStore:
    def __init__(
        self,
        cipher: FieldCipher,
        *,
        publish_ahead: timedelta,
        longest_token_lifetime: timedelta,
        leeway: timedelta = timedelta(seconds=70),
    ) -> None:
        self.cipher = cipher
        self.publish_ahead = publish_ahead
        # Keep a superseded key published until its last token expired, plus the verifiers'
        # leeway and this store's own cache time.
        self.keep_after_superseded = longest_token_lifetime + leeway
        self._signer: _Signer | None = None
        self._public: dict[str, tuple[float, LoadedKey | None]] = {}

    def _new_key(self, now: datetime, activates_at: datetime) -> SigningKey:
        private = Ed25519PrivateKey.generate()
        kid = f"{now:%Y%m%d}-{secrets.token_hex(4)}"
        raw_private = private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        raw_public = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        return SigningKey(
            kid=kid,
            algorithm=ALGORITHM,
            public_key=_b64url(raw_public),
            private_key_encrypted=self.cipher.encrypt(
                _b64url(raw_private), context=private_key_context(kid)
            ),
            created_at=now,
            activates_at=activates_at,
        )

    async def ensure_key(self, session: AsyncSession, now: datetime) -> SigningKey | None:
        """On first start (no key can sign): create one that signs at once."""
        keys = await repository.published_keys(session, now)
        if any(key.activates_at <= now for key in keys):
            return None
        key = self._new_key(now, now)
        await repository.add(session, key)
        return key

    async def rotate(
        self, session: AsyncSession, now: datetime, *, immediately: bool = False
    ) -> SigningKey:
        """A new key, published now and signing after ``publish_ahead`` (at once when
        ``immediately``: after a leak, when tokens of the old key must stop working)."""
        activates_at = now if immediately else now + self.publish_ahead
        key = self._new_key(now, activates_at)
        await repository.add(session, key)
        retires_at = now if immediately else activates_at + self.keep_after_superseded
        await repository.retire_all_except(session, key.kid, retires_at, now)
        self._signer = None
        self._public.clear()
        return key

    async def jwks(self, session: AsyncSession, now: datetime) -> dict[str, Any]:
        return {"keys": [jwk(key) for key in await repository.published_keys(session, now)]}

    async def _load_signer(self, session: AsyncSession, now: datetime) -> _Signer:
        keys: Sequence[SigningKey] = await repository.published_keys(session, now)
        active = [key for key in keys if key.activates_at <= now]
        if not active:
            raise RuntimeError("no signing key: identity's start-up creates one")
        current = active[-1]
        pending = [key.activates_at for key in keys if key.activates_at > now]
        raw = _b64url_decode(
            self.cipher.decrypt(
                current.private_key_encrypted, context=private_key_context(current.kid)
            )
        )
        return _Signer(
            kid=current.kid,
            private_key=Ed25519PrivateKey.from_private_bytes(raw),
            loaded_at=time.monotonic(),
            valid_until=min(pending) if pending else None,
        )

    async def sign(self, session: AsyncSession, now: datetime, claims: dict[str, Any]) -> str:
        """Sign with the current key, read through the caller's session: on SQLite a second
        session would wait for the write lock that the caller's transaction holds."""
        signer = self._signer
        if (
            signer is None
            or time.monotonic() - signer.loaded_at > _CACHE_SECONDS
            or (signer.valid_until is not None and now >= signer.valid_until)
        ):
            signer = self._signer = await self._load_signer(session, now)
        return jwt.encode(
            claims, signer.private_key, algorithm=ALGORITHM, headers={"kid": signer.kid}
        )

    async def public_key(
        self, sessionmaker: async_sessionmaker[AsyncSession], kid: str, now: datetime
    ) -> Ed25519PublicKey | None:
        """The public key of a published ``kid`` (identity verifying its own tokens).

        Called while a request is being authenticated, before the request's own session has
        begun a transaction, so a session of its own is safe on SQLite too.
        """
        cached = self._public.get(kid)
        if cached is not None and time.monotonic() - cached[0] < _CACHE_SECONDS:
            loaded = cached[1]
        else:
            async with sessionmaker() as session:
                row = await repository.published_key(session, kid, now)
            loaded = (
                LoadedKey(
                    kid=row.kid,
                    public_key=Ed25519PublicKey.from_public_bytes(_b64url_decode(row.public_key)),
                    activates_at=row.activates_at,
                    retires_at=row.retires_at,
                )
                if row is not None
                else None
            )
            if len(self._public) > 100:
                self._public.clear()
            self._public[kid] = (time.monotonic(), loaded)
        if loaded is None or (loaded.retires_at is not None and loaded.retires_at <= now):
            return None
        return loaded.public_key
