"""Access tokens for tests of services other than identity: a local issuer with its own
Ed25519 key, and fixed API keys, plugged in as the app's authenticator."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from libs.common.auth import (
    ACCOUNT_SCOPES,
    API_AUDIENCE,
    INTERNAL_AUDIENCE,
    Authenticator,
    Principal,
    PrincipalKind,
    Role,
    ServiceScope,
)

ISSUER = "parcelpro"


class StaticKeySource:
    def __init__(self, keys: dict[str, Any]) -> None:
        self.keys = keys

    async def get_key(self, kid: str) -> Any | None:
        return self.keys.get(kid)


class StaticApiKeys:
    """API keys known to the test; ``revoke`` makes one unknown at once."""

    def __init__(self) -> None:
        self.keys: dict[str, Principal] = {}

    async def resolve(self, api_key: str) -> Principal | None:
        return self.keys.get(api_key)

    def issue(
        self,
        account_id: uuid.UUID,
        scopes: Iterable[str] = ACCOUNT_SCOPES,
        *,
        mode: str = "live",
    ) -> str:
        key_id = uuid.uuid4()
        key = f"pp_{mode}_{key_id.hex}"
        self.keys[key] = Principal(
            kind=PrincipalKind.API_KEY,
            subject=str(key_id),
            account_id=account_id,
            scopes=frozenset(scopes),
            mode="test" if mode == "test" else "live",
            key_id=key_id,
        )
        return key

    def revoke(self, key: str) -> None:
        self.keys.pop(key, None)


class TokenIssuer:
    """Mints tokens exactly as identity does (same claims, same algorithm)."""

    def __init__(self, issuer: str = ISSUER) -> None:
        self.issuer = issuer
        self.kid = f"test-{uuid.uuid4().hex[:8]}"
        self.private_key = Ed25519PrivateKey.generate()
        self.api_keys = StaticApiKeys()

    def authenticator(self) -> Authenticator:
        return Authenticator(
            key_source=StaticKeySource({self.kid: self.private_key.public_key()}),
            api_keys=self.api_keys,
            issuer=self.issuer,
        )

    def token(self, claims: dict[str, Any], *, ttl: int = 900, key: Any = None) -> str:
        now = int(time.time())
        payload = {"iss": self.issuer, "iat": now, "exp": now + ttl, "jti": uuid.uuid4().hex}
        payload.update(claims)
        return jwt.encode(
            payload, key or self.private_key, algorithm="EdDSA", headers={"kid": self.kid}
        )

    def user(self, account_id: uuid.UUID | None = None, **extra: Any) -> str:
        account_id = account_id or uuid.uuid4()
        return self.token(
            {
                "sub": str(account_id),
                "aud": API_AUDIENCE,
                "kind": PrincipalKind.USER.value,
                "scope": " ".join(sorted(ACCOUNT_SCOPES)),
                **extra,
            }
        )

    def staff(self, *roles: Role, staff_id: uuid.UUID | None = None) -> str:
        return self.token(
            {
                "sub": str(staff_id or uuid.uuid4()),
                "aud": API_AUDIENCE,
                "kind": PrincipalKind.STAFF.value,
                "roles": [role.value for role in roles],
                "scope": "",
            }
        )

    def service(self, name: str, scopes: Iterable[ServiceScope] = tuple(ServiceScope)) -> str:
        return self.token(
            {
                "sub": f"service:{name}",
                "aud": INTERNAL_AUDIENCE,
                "kind": PrincipalKind.SERVICE.value,
                "scope": " ".join(scope.value for scope in scopes),
            }
        )


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
