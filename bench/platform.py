"""The platform under benchmark: every service on PostgreSQL behind Caddy, as real processes,
seeded with an account, an API key and shipments to look up."""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.support.platform import (
    AccountHolder,
    issue_api_key,
    register_and_login,
    shipment_payload,
)
from tests.support.stack import Stack, running_stack

BENCH_POSTGRES_URL = os.environ.get(
    "BENCH_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
)
UNLIMITED = "100000000/minute"


@dataclass
class BenchPlatform:
    stack: Stack
    holder: AccountHolder
    api_key: str
    shipments: list[dict[str, object]] = field(default_factory=list)

    @property
    def database_url(self) -> str:
        return self.stack.env["SHIPPING_DATABASE_URL"]

    @property
    def key_header(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}

    def sql(self, statement: str, **params: object) -> list[tuple[object, ...]]:
        async def run() -> list[tuple[object, ...]]:
            engine = create_async_engine(self.database_url)
            try:
                async with engine.begin() as conn:
                    result = await conn.execute(text(statement), params)
                    return [tuple(row) for row in result] if result.returns_rows else []
            finally:
                await engine.dispose()

        return asyncio.run(run())


@contextmanager
def bench_platform(*, lookups: int = 200) -> Iterator[BenchPlatform]:
    with tempfile.TemporaryDirectory(prefix="parcelpro-bench-") as tmp:
        env = {
            # Public tracking is rate-limited per client; the load generator is one client.
            "SHIPPING_TRACKING_RATE_LIMIT": UNLIMITED,
            "SHIPPING_TRACKING_POSTCODE_RATE_LIMIT": UNLIMITED,
            "SHIPPING_PURGE_IN_PROCESS": "false",
            "IDENTITY_REGISTRATIONS_PER_IP": UNLIMITED,
            # The load generator is one client with one account; real traffic spreads over many.
            "RATE_LIMIT_PER_IP": UNLIMITED,
            "RATE_LIMIT_PER_ACCOUNT": UNLIMITED,
            # The services' own default; the test stack shortens it so that a test sees a
            # revoked key refused within seconds.
            "API_KEY_CACHE_SECONDS": "30",
            **{k: v for k, v in os.environ.items() if k.startswith("BENCHENV_")},
        }
        env = {k.removeprefix("BENCHENV_"): v for k, v in env.items()}
        # The run's database goes with it, however the run ends (a purge leaves a million rows).
        database_url: str | None = None
        try:
            with (
                running_stack(
                    Path(tmp),
                    # A database of this run's own: runs side by side must not drop each other's.
                    suffix=f"bench_{os.getpid()}",
                    extra_env=env,
                    postgres_url=BENCH_POSTGRES_URL,
                ) as stack,
                httpx.Client(base_url=stack.gateway_url, timeout=60.0) as client,
            ):
                database_url = stack.env["SHIPPING_DATABASE_URL"]
                holder = register_and_login(client)
                _, key = issue_api_key(client, holder, "shipments:read", "shipments:write")
                platform = BenchPlatform(stack=stack, holder=holder, api_key=key)
                items = [shipment_payload() for _ in range(lookups)]
                response = client.post(
                    "/v1/shipments/bulk", json={"shipments": items}, headers=platform.key_header
                )
                response.raise_for_status()
                platform.shipments = [
                    {**r["shipment"], "postcode": items[i]["recipient"]["postcode"]}
                    for i, r in enumerate(response.json()["results"])
                ]
                yield platform
        finally:
            if database_url is not None:
                asyncio.run(_drop_database(database_url))


async def _drop_database(url: str) -> None:
    admin, _, name = url.rpartition("/")
    engine = create_async_engine(f"{admin}/postgres", isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        await engine.dispose()
