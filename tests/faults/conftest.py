"""Fixtures of the fault tests: a private PostgreSQL server that may be restarted."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.postgres_cluster import PostgresCluster, postgres_cluster, unavailable_reason


@pytest.fixture(scope="module")
def private_postgres() -> Iterator[PostgresCluster]:
    """A PostgreSQL server of this module's own: the shared server is never restarted."""
    reason = unavailable_reason()
    if reason is not None:
        pytest.skip(f"no private PostgreSQL server for the restart tests: {reason}")
    with postgres_cluster() as cluster:
        yield cluster
