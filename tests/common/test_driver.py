"""``libs.common.driver``: whether a failed direct statement may have run, which decides
whether a write may be made again another way (0707)."""

from __future__ import annotations

import asyncio
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


def direct_statements(
    monkeypatch: pytest.MonkeyPatch, connect: Any, *, max_size: int = 2
) -> DirectStatements:
    database = cast(Database, SimpleNamespace(dialect_name="postgresql", bind=object()))
    statements = DirectStatements(database, schema=None, application_name="test", max_size=max_size)
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


class RecordingConnection:
    """A connection that records what it is sent; ``hold`` keeps the next send waiting until
    set, and ``refuse`` makes a batch (or a lone statement with that value) fail."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, list[Any]]] = []
        self.sending = asyncio.Event()
        self.hold: asyncio.Event | None = None
        self.batch_failure: BaseException | None = None
        self.refused_value: Any = None
        self.terminated = False

    async def fetch(self, _sql: str, *arguments: Any) -> list[Any]:
        self.sent.append(("alone", [arguments[0]]))
        self.sending.set()
        if self.hold is not None:
            hold, self.hold = self.hold, None
            await hold.wait()
        if arguments[0] == self.refused_value:
            raise asyncpg.UniqueViolationError("duplicate key")
        return [arguments]

    async def executemany(self, _sql: str, batch: list[list[Any]]) -> None:
        self.sent.append(("together", [arguments[0] for arguments in batch]))
        if self.batch_failure is not None:
            raise self.batch_failure

    def is_closed(self) -> bool:
        return self.terminated

    def terminate(self) -> None:
        self.terminated = True


@pytest.fixture
def connection() -> RecordingConnection:
    return RecordingConnection()


@pytest.fixture
def one_connection(monkeypatch: pytest.MonkeyPatch, connection: RecordingConnection) -> Any:
    """Direct statements on at most one connection, which is ``connection`` (again after a
    failure: what it was sent stays in one list)."""

    async def connect(_: Any) -> Any:
        statements._open += 1
        connection.terminated = False
        return connection

    statements = direct_statements(monkeypatch, connect, max_size=1)
    return statements


async def writes_behind_a_held_one(
    statements: DirectStatements, connection: RecordingConnection, values: list[Any]
) -> tuple[asyncio.Event, asyncio.Task[bool], list[asyncio.Task[bool]]]:
    """A first write (``"first"``) held on the only connection, and ``values`` written while it
    is: they wait for the connection together."""
    held = connection.hold = asyncio.Event()
    first = asyncio.create_task(statements.write(STATEMENT, {"value": "first"}))
    await connection.sending.wait()
    waiting = [asyncio.create_task(statements.write(STATEMENT, {"value": v})) for v in values]
    await asyncio.sleep(0)  # each takes its place in the line
    assert len(statements._writes[STATEMENT]) == len(values)
    return held, first, waiting


async def test_writes_waiting_for_a_connection_are_sent_together(
    one_connection: DirectStatements, connection: RecordingConnection
) -> None:
    held, first, waiting = await writes_behind_a_held_one(
        one_connection, connection, ["a", "b", "c"]
    )
    held.set()
    assert await first is True
    assert await asyncio.gather(*waiting) == [True, True, True]
    assert connection.sent == [("alone", ["first"]), ("together", ["a", "b", "c"])]
    assert one_connection.size == 1  # kept for the next ones


async def test_a_batch_is_no_larger_than_max_batch(
    one_connection: DirectStatements, connection: RecordingConnection
) -> None:
    one_connection.max_batch = 2
    held, first, waiting = await writes_behind_a_held_one(
        one_connection, connection, ["a", "b", "c"]
    )
    held.set()
    await asyncio.gather(first, *waiting)
    assert connection.sent == [
        ("alone", ["first"]),
        ("together", ["a", "b"]),
        ("alone", ["c"]),
    ]


async def test_a_batch_refused_whole_is_sent_again_write_by_write(
    one_connection: DirectStatements, connection: RecordingConnection
) -> None:
    """PostgreSQL refused one statement of the batch, so none of it ran: each write learns
    what its own statement does."""
    connection.batch_failure = asyncpg.UniqueViolationError("duplicate key")
    connection.refused_value = "b"
    held, first, waiting = await writes_behind_a_held_one(
        one_connection, connection, ["a", "b", "c"]
    )
    held.set()
    await first
    outcomes = await asyncio.gather(*waiting, return_exceptions=True)
    assert outcomes[0] is True
    assert outcomes[2] is True
    assert isinstance(outcomes[1], asyncpg.UniqueViolationError)
    assert may_have_run(outcomes[1]) is False
    assert connection.sent[:2] == [("alone", ["first"]), ("together", ["a", "b", "c"])]
    assert sorted(value for _, (value,) in connection.sent[2:]) == ["a", "b", "c"]


@pytest.mark.parametrize(
    "failure",
    [ConnectionResetError(), TimeoutError(), asyncpg.AdminShutdownError("terminating")],
    ids=["reset", "timeout", "shutdown"],
)
async def test_a_batch_whose_connection_is_lost_leaves_every_write_of_it_unknown(
    one_connection: DirectStatements, connection: RecordingConnection, failure: BaseException
) -> None:
    """It may have committed: none of its writes is sent again."""
    connection.batch_failure = failure
    held, first, waiting = await writes_behind_a_held_one(one_connection, connection, ["a", "b"])
    held.set()
    await first
    outcomes = await asyncio.gather(*waiting, return_exceptions=True)
    assert all(outcome is failure for outcome in outcomes)
    assert may_have_run(failure) is True
    assert connection.sent == [("alone", ["first"]), ("together", ["a", "b"])]
    assert connection.terminated
    assert one_connection.size == 0


async def test_writes_without_a_connection_were_not_sent(monkeypatch: pytest.MonkeyPatch) -> None:
    async def connect(_: Any) -> Any:
        raise ConnectionRefusedError()

    statements = direct_statements(monkeypatch, connect)
    outcomes = await asyncio.gather(
        *(statements.write(STATEMENT, {"value": v}) for v in "abc"), return_exceptions=True
    )
    assert all(isinstance(outcome, StatementNotSent) for outcome in outcomes)
    assert not any(may_have_run(outcome) for outcome in outcomes)


async def test_a_write_cancelled_while_it_waits_is_never_sent(
    one_connection: DirectStatements, connection: RecordingConnection
) -> None:
    held, first, waiting = await writes_behind_a_held_one(one_connection, connection, ["a", "b"])
    waiting[1].cancel()
    held.set()
    await first
    assert await waiting[0] is True
    with pytest.raises(asyncio.CancelledError):
        await waiting[1]
    assert connection.sent == [("alone", ["first"]), ("alone", ["a"])]


async def test_writes_elsewhere_than_postgresql_are_not_run() -> None:
    database = cast(Database, SimpleNamespace(dialect_name="sqlite", bind=object()))
    statements = DirectStatements(database, schema=None, application_name="test", max_size=2)
    assert await statements.write(STATEMENT, {"value": 1}) is False
