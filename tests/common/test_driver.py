"""``libs.common.driver``: whether a failed direct statement may have run, which decides
whether a write may be made again another way (0707)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

import asyncpg
import pytest
from sqlalchemy import bindparam, select

from libs.common.db import Database
from libs.common.driver import DirectStatement, DirectStatements, StatementNotSent, may_have_run

STATEMENT = DirectStatement(select(bindparam("value")))


class LostConnection:
    """A connection that fails its statement as the test says."""

    def __init__(self, failure: BaseException) -> None:
        self.failure = failure
        self.terminated = False

    async def fetch(self, *_: Any) -> Any:
        raise self.failure

    def is_closed(self) -> bool:
        return self.terminated

    def terminate(self) -> None:
        self.terminated = True


def direct_statements(monkeypatch: pytest.MonkeyPatch, connect: Any) -> DirectStatements:
    database = cast(Database, SimpleNamespace(dialect_name="postgresql", bind=object()))
    statements = DirectStatements(database, schema=None, application_name="test", max_size=2)
    monkeypatch.setattr(statements, "_connect", connect)
    return statements


@pytest.mark.parametrize(
    "failure",
    [ConnectionRefusedError(), TimeoutError(), asyncpg.TooManyConnectionsError("full")],
    ids=["refused", "timeout", "too-many"],
)
async def test_a_statement_without_a_connection_was_not_sent(
    monkeypatch: pytest.MonkeyPatch, failure: BaseException
) -> None:
    async def connect(_: Any) -> Any:
        raise failure

    statements = direct_statements(monkeypatch, connect)
    with pytest.raises(StatementNotSent) as raised:
        await statements.fetch(STATEMENT, {"value": 1})
    assert raised.value.__cause__ is failure
    assert may_have_run(raised.value) is False
    assert statements.size == 0


@pytest.mark.parametrize(
    "failure",
    [
        ConnectionResetError(),
        TimeoutError(),
        asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
        asyncpg.AdminShutdownError("terminating connection due to administrator command"),
        asyncpg.InternalClientError("unexpected message"),
    ],
    ids=["reset", "timeout", "closed", "shutdown", "protocol"],
)
async def test_a_connection_lost_once_the_statement_was_sent_leaves_its_outcome_unknown(
    monkeypatch: pytest.MonkeyPatch, failure: BaseException
) -> None:
    connection = LostConnection(failure)

    async def connect(_: Any) -> Any:
        statements._open += 1
        return connection

    statements = direct_statements(monkeypatch, connect)
    with pytest.raises(type(failure)) as raised:
        await statements.fetch(STATEMENT, {"value": 1})
    assert raised.value is failure
    assert may_have_run(raised.value) is True
    # The connection is not used again.
    assert connection.terminated
    assert statements.size == 0


@pytest.mark.parametrize(
    "failure",
    [
        asyncpg.UniqueViolationError("duplicate key"),
        asyncpg.ForeignKeyViolationError("endpoint gone"),
        asyncpg.SerializationError("could not serialize"),
        asyncpg.exceptions._base.DataError("invalid input for query argument $1"),
    ],
    ids=["unique", "foreign-key", "serialization", "arguments"],
)
def test_a_statement_postgresql_or_asyncpg_refused_did_not_run(failure: BaseException) -> None:
    assert may_have_run(failure) is False
