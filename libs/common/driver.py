"""Single statements sent straight through asyncpg, for the few routes where SQLAlchemy's
session and ORM cost more than the statement itself.

Measured on ``GET /v1/shipments/{id}``: checking out a session, loading ORM objects, committing
and closing took about half of the request's CPU time; the two-table read itself a fraction.
On ``POST /v1/shipments`` the ORM's nine round trips took most of it. A
:class:`DirectStatement` is a SQLAlchemy Core statement compiled once for asyncpg (so the SQL
is still written, and checked, in SQLAlchemy) and :class:`DirectStatements` runs it on a few
asyncpg connections of its own, with prepared statements cached per connection. Each statement
runs on its own, so it is its own transaction: a write of several tables is one statement
(data-modifying ``WITH``), stored whole or not at all.

Writes whose rows the caller does not need go through :meth:`DirectStatements.write`: those of
one statement that wait for a connection at the same time are sent together, in one pipelined
round trip that PostgreSQL runs as one transaction with one commit (0710).

Only on PostgreSQL: elsewhere :meth:`DirectStatements.fetch` answers ``None`` and the caller goes
the ordinary way. A failed read may simply be read again the ordinary way; a failed write only
when it certainly did not run (:func:`may_have_run`). Tests that run the app inside one
rolled-back connection run the statement on that connection, in a savepoint, so they see what
the test wrote and a failed statement leaves the test's transaction usable.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any

import asyncpg
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler

from libs.common.db import Database


class StatementNotSent(Exception):
    """No connection could be had for a direct statement: it never reached PostgreSQL."""


DIRECT_ERRORS: tuple[type[BaseException], ...] = (
    StatementNotSent,
    OSError,
    asyncio.TimeoutError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    # A connection the server shut down while it was idle (a restart) fails its next read so.
    asyncpg.InternalClientError,
)
"""What a direct statement can fail with when the database is unavailable or refuses it; the
caller then goes the ordinary way, which answers as every other route does (503 while it is
away), unless the statement was a write that :func:`may_have_run`."""

# asyncpg's own check of the arguments, made before it sends the statement's Bind and Execute
# (the server's class-22 ``asyncpg.DataError`` is another class).
_ARGUMENTS_REFUSED = asyncpg.exceptions._base.DataError
# A connection lost, or the server shutting down or crashing: these can end a statement after
# its transaction committed, before PostgreSQL could say so.
_CONNECTION_SQLSTATES = ("08", "57P")


def may_have_run(error: BaseException) -> bool:
    """Whether PostgreSQL may have carried out a direct statement that failed with ``error``
    (one of :data:`DIRECT_ERRORS`).

    Not when no connection could be had, when asyncpg refused the arguments before sending
    them, or when PostgreSQL answered with an error of the statement (a statement outside a
    transaction block that fails is rolled back whole). A connection lost, reset or timed out
    once the statement may have been sent leaves its outcome unknown: it may have committed.
    """
    if isinstance(error, StatementNotSent | _ARGUMENTS_REFUSED):
        return False
    if isinstance(error, asyncpg.PostgresError):
        sqlstate = getattr(error, "sqlstate", None) or ""
        return sqlstate.startswith(_CONNECTION_SQLSTATES)
    return True


class DirectStatement:
    """A Core statement compiled once into asyncpg's positional SQL (``$1``, ``$2`` ...).

    Named parameters (``bindparam("name")``) are given per call; the statement's own constants
    (literals SQLAlchemy sends as parameters) are kept from compilation.
    """

    def __init__(self, statement: ClauseElement) -> None:
        compiled = statement.compile(dialect=asyncpg_dialect())  # type: ignore[no-untyped-call]
        if not isinstance(compiled, SQLCompiler):
            raise TypeError("a direct statement is SQL")
        self.sql = str(compiled)
        self.names: tuple[str, ...] = tuple(compiled.positiontup or ())
        self._constants: dict[str, Any] = {
            name: bind.effective_value
            for name, bind in compiled.binds.items()
            if not bind.required and name in self.names
        }

    def arguments(self, params: Mapping[str, Any]) -> list[Any]:
        constants = self._constants
        return [constants[name] if name in constants else params[name] for name in self.names]


class _Write:
    """One caller's write waiting to be sent, and where its outcome goes."""

    __slots__ = ("arguments", "outcome")

    def __init__(self, arguments: list[Any], outcome: asyncio.Future[None]) -> None:
        self.arguments = arguments
        self.outcome = outcome


class _SendAlone(Exception):
    """The batch a write went with was refused whole: nothing of it is stored, and the write is
    sent again on its own, so that its caller learns what its own statement does."""


class DirectStatements:
    """A service's direct statements, on a few asyncpg connections of their own: opened as
    statements need them (up to ``max_size``), kept idle between them, closed with the service.

    Deliberately not ``asyncpg.Pool``: measured, its acquire and release (a timeout, a
    shielded task and a reset round trip per read) cost more than the read. Each use runs one
    statement outside any transaction block, so a connection has no session state to reset; one
    a statement failed on (cancelled mid-statement, lost) is closed instead of reused.
    """

    def __init__(
        self,
        database: Database,
        *,
        schema: str | None,
        application_name: str,
        max_size: int,
        max_batch: int = 32,
        connect_timeout_seconds: float = 5.0,
    ) -> None:
        self.database = database
        self.schema = schema
        self.application_name = application_name
        self.max_size = max_size
        self.max_batch = max_batch
        self.connect_timeout_seconds = connect_timeout_seconds
        self._slots = asyncio.Semaphore(max_size)
        self._idle: list[asyncpg.Connection] = []
        self._writes: dict[DirectStatement, deque[_Write]] = {}
        self._open = 0
        self.writes_sent = 0
        """Writes sent so far (:meth:`write`), alone or together; with :attr:`write_round_trips`
        the metrics tell how many go together."""
        self.write_round_trips = 0
        self._closed = False

    @property
    def available(self) -> bool:
        return self.database.dialect_name == "postgresql"

    @property
    def size(self) -> int:
        """Connections open now (idle or reading)."""
        return self._open

    async def fetch(
        self, statement: DirectStatement, params: Mapping[str, Any]
    ) -> Sequence[Mapping[str, Any]] | None:
        """The rows, or ``None`` when direct statements do not exist here (not PostgreSQL).

        Raises :class:`StatementNotSent` when no connection could be had, else what asyncpg
        raised (see :func:`may_have_run`)."""
        if not self.available:
            return None
        arguments = statement.arguments(params)
        bind = self.database.bind
        if isinstance(bind, AsyncConnection):
            # SQLAlchemy begins the test's transaction with its first statement; begun here,
            # so that the savepoint below nests inside it instead of committing on its own.
            await bind.exec_driver_sql("SELECT 1")
            raw = await bind.get_raw_connection()
            shared: asyncpg.Connection = raw.driver_connection
            async with shared.transaction():
                rows: list[asyncpg.Record] = await shared.fetch(statement.sql, *arguments)
            return rows
        async with self._slots:
            connection = await self._checkout(bind)
            try:
                rows = await connection.fetch(statement.sql, *arguments)
            except BaseException:
                self._discard(connection)
                raise
            self._checkin(connection)
            return rows

    async def write(self, statement: DirectStatement, params: Mapping[str, Any]) -> bool:
        """Runs ``statement`` (a write; its rows are not kept): ``False`` when direct statements
        do not exist here (not PostgreSQL), ``True`` once PostgreSQL has committed it.

        Writes of one statement that wait for a connection go together: the next connection
        free takes every one waiting (up to ``max_batch``) and sends them in one round trip
        (asyncpg's ``executemany``), which PostgreSQL runs as one implicit transaction with one
        commit. A lone write is sent as :meth:`fetch` sends it. Each caller sees what its own
        statement alone would have given: when PostgreSQL (or asyncpg, before sending) refuses
        the batch, nothing of it is stored and each write is sent again on its own; when the
        connection fails once the batch was sent, every write of it raises that error, for
        which :func:`may_have_run` holds. A caller cancelled while its write waits leaves it
        unsent.
        """
        if not self.available:
            return False
        engine = self.database.bind
        if isinstance(engine, AsyncConnection):
            await self.fetch(statement, params)  # the test's own connection: nothing to share
            return True
        mine = _Write(statement.arguments(params), asyncio.get_running_loop().create_future())
        waiting = self._writes.get(statement)
        if waiting is None:
            waiting = self._writes[statement] = deque()
        waiting.append(mine)
        try:
            async with self._slots:
                # Another connection may have taken it meanwhile; then this one sends what came
                # after it, if anything, and the outcome arrives from there.
                while not mine.outcome.done() and waiting:
                    batch: list[_Write] = []
                    while waiting and len(batch) < self.max_batch:
                        write = waiting.popleft()
                        if not write.outcome.cancelled():
                            batch.append(write)
                    if batch:
                        await self._send(engine, statement, batch)
            await mine.outcome
        except asyncio.CancelledError:
            with contextlib.suppress(ValueError):
                waiting.remove(mine)  # not sent
            if not mine.outcome.cancel() and not mine.outcome.cancelled():
                mine.outcome.exception()  # settled as it was cancelled: nobody else reads it
            raise
        except _SendAlone:
            await self.fetch(statement, params)
        return True

    async def _send(
        self, engine: AsyncEngine, statement: DirectStatement, batch: list[_Write]
    ) -> None:
        """Sends ``batch`` on one connection and settles every write's outcome."""
        try:
            connection = await self._checkout(engine)
        except StatementNotSent as not_sent:
            _settle(batch, not_sent)
            return
        self.writes_sent += len(batch)
        self.write_round_trips += 1
        try:
            if len(batch) == 1:
                await connection.fetch(statement.sql, *batch[0].arguments)
            else:
                await connection.executemany(statement.sql, [w.arguments for w in batch])
        except asyncio.CancelledError:
            # The caller that was sending it went away: the batch may have run.
            self._discard(connection)
            _settle(batch, ConnectionAbortedError("the batch's sender was cancelled"))
            raise
        except BaseException as exc:
            self._discard(connection)
            refused_whole = len(batch) > 1 and not may_have_run(exc)
            _settle(batch, _SendAlone() if refused_whole else exc)
            if not isinstance(exc, Exception):
                raise
            return
        self._checkin(connection)
        _settle(batch, None)

    async def _checkout(self, engine: AsyncEngine) -> asyncpg.Connection:
        """An idle connection, or a new one; :class:`StatementNotSent` when none can be had."""
        try:
            return self._idle_connection() or await self._connect(engine)
        except DIRECT_ERRORS as exc:
            raise StatementNotSent(type(exc).__name__) from exc

    def _checkin(self, connection: asyncpg.Connection) -> None:
        """Kept for the next statement, unless the service is closing."""
        if self._closed:
            self._discard(connection)
        else:
            self._idle.append(connection)

    async def _connect(self, engine: AsyncEngine) -> asyncpg.Connection:
        server_settings = {"application_name": self.application_name}
        if self.schema:
            server_settings["search_path"] = self.schema
        dsn = make_url(engine.url).set(drivername="postgresql")
        connection: asyncpg.Connection = await asyncpg.connect(
            dsn.render_as_string(hide_password=False),
            server_settings=server_settings,
            timeout=self.connect_timeout_seconds,
        )
        self._open += 1
        return connection

    def _idle_connection(self) -> asyncpg.Connection | None:
        """The most recently used idle connection still open (one the server closed is
        dropped)."""
        while self._idle:
            connection = self._idle.pop()
            if not connection.is_closed():
                return connection
            self._discard(connection)
        return None

    def _discard(self, connection: asyncpg.Connection) -> None:
        self._open -= 1
        connection.terminate()

    async def close(self) -> None:
        self._closed = True
        idle, self._idle = self._idle, []
        for connection in idle:
            self._open -= 1
            await connection.close(timeout=self.connect_timeout_seconds)


def _settle(batch: list[_Write], error: BaseException | None) -> None:
    for write in batch:
        if write.outcome.done():  # its caller was cancelled
            continue
        if error is None:
            write.outcome.set_result(None)
        else:
            write.outcome.set_exception(error)
