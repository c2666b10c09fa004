"""Identity's own authenticator: its tokens are verified with keys from its own store and API
keys are checked in its own database, so identity never calls itself over HTTP."""

from __future__ import annotations

import hashlib
from typing import Any

from fastapi import FastAPI

from libs.common.auth import Authenticator, Principal
from libs.common.clock import Clock
from libs.common.db import Database
from services.identity_api.api_keys import service as api_keys
from services.identity_api.runtime import IdentityRuntime

NEGATIVE_TTL_SECONDS = 5.0


class StoreKeySource:
    def __init__(self, app: FastAPI) -> None:
        self.app = app

    async def get_key(self, kid: str) -> Any | None:
        runtime: IdentityRuntime = self.app.state.identity_runtime
        database: Database = self.app.state.database
        clock: Clock = self.app.state.clock
        return await runtime.keys.public_key(database.sessionmaker, kid, clock.now())


class DatabaseApiKeyResolver:
    """Same semantics as ``HttpApiKeyResolver``: answers cached for at most 30 s (negative 5 s)."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app

    async def resolve(self, api_key: str) -> Principal | None:
        runtime: IdentityRuntime = self.app.state.identity_runtime
        cache_key = hashlib.sha256(api_key.encode()).hexdigest()
        hit, cached = runtime.api_key_cache.get(cache_key)
        if hit:
            return cached
        database: Database = self.app.state.database
        clock: Clock = self.app.state.clock
        async with database.sessionmaker() as session:
            row = await api_keys.check(session, runtime.hash_key, api_key, clock.now())
            await session.commit()
        principal = api_keys.principal(row) if row is not None else None
        runtime.api_key_cache.set(cache_key, principal, None if principal else NEGATIVE_TTL_SECONDS)
        return principal


def build_authenticator(app: FastAPI) -> Authenticator:
    return Authenticator(
        key_source=StoreKeySource(app),
        api_keys=DatabaseApiKeyResolver(app),
        issuer=app.state.settings.jwt_issuer,
    )
