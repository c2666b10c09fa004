"""The collaborators identity builds from its settings once per app: the field cipher, the
password hasher, the signing-key store and the API-key cache."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from libs.common.auth import INTROSPECTION_TTL_SECONDS, Principal, TtlCache
from libs.common.crypto import FieldCipher
from services.identity_api.passwords.hashing import PasswordHasher
from services.identity_api.settings import IdentitySettings
from services.identity_api.signing_keys.service import SigningKeyStore


@dataclass
class IdentityRuntime:
    settings: IdentitySettings
    cipher: FieldCipher
    hash_key: bytes
    passwords: PasswordHasher
    keys: SigningKeyStore
    api_key_cache: TtlCache[str, Principal | None] = field(
        default_factory=lambda: TtlCache(ttl_seconds=INTROSPECTION_TTL_SECONDS)
    )

    @classmethod
    def from_settings(cls, settings: IdentitySettings) -> IdentityRuntime:
        cipher = settings.field_cipher()
        return cls(
            settings=settings,
            cipher=cipher,
            hash_key=settings.hash_key_bytes(),
            passwords=PasswordHasher(
                time_cost=settings.password_time_cost,
                memory_cost_kib=settings.password_memory_cost_kib,
                parallelism=settings.password_parallelism,
            ),
            keys=SigningKeyStore(
                cipher,
                publish_ahead=timedelta(seconds=settings.signing_key_publish_ahead_seconds),
                longest_token_lifetime=timedelta(
                    seconds=max(
                        settings.access_token_ttl_seconds, settings.service_token_ttl_seconds
                    )
                ),
            ),
        )
