"""argon2id hashes via pwdlib, computed in a worker thread so the event loop keeps serving.

``verify_and_update`` returns a new hash when the stored one was made with other parameters,
so raising the cost in the settings upgrades every account at its next login.
"""

from __future__ import annotations

import secrets

import anyio.to_thread
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher


class PasswordHasher:
    def __init__(self, *, time_cost: int, memory_cost_kib: int, parallelism: int) -> None:
        self._context = PasswordHash(
            (
                Argon2Hasher(
                    time_cost=time_cost, memory_cost=memory_cost_kib, parallelism=parallelism
                ),
            )
        )
        self._dummy_hash: str | None = None

    async def hash(self, password: str) -> str:
        return await anyio.to_thread.run_sync(self._context.hash, password)

    async def verify_and_update(self, password: str, stored_hash: str) -> tuple[bool, str | None]:
        return await anyio.to_thread.run_sync(
            self._context.verify_and_update, password, stored_hash
        )

    async def verify_against_nothing(self, password: str) -> None:
        """Spend the time of a real verification when there is no account to check, so the
        answer to an unknown e-mail address cannot be told apart by its timing."""
        if self._dummy_hash is None:
            self._dummy_hash = await self.hash(secrets.token_urlsafe(16))
        await anyio.to_thread.run_sync(self._context.verify, password, self._dummy_hash)
