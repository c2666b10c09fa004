"""``Idempotency-Key`` on POSTs that create (ARCHITECTURE.md, API conventions).

A client that retries a create with the same key gets the first response again, never a second
object. The same key with a different request is a ``422``; a key whose first request is still
being processed is a ``409``. Keys are scoped (per account), expire after a TTL, and a key whose
request died mid-way (crash, lost connection) is taken over once its lock has lapsed.

A service adds a table with :class:`IdempotencyKeyMixin` and wraps its create endpoints::

    async with store.guard(request, session, scope=str(account_id), key=key, now=now) as claim:
        if claim.replay is not None:
            return claim.replay
        created = await service.create(...)
        return await claim.complete(201, ShipmentRead.model_validate(created), resource_id=...)

The in-flight marker is committed on its own (so a concurrent retry sees it at once); the
stored response is written in the request's own transaction, so it exists exactly when the
created object does.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import AsyncIterator, Collection, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, ClassVar

import orjson
from fastapi import Depends, Header, Request
from pydantic import BaseModel
from sqlalchemy import Index, Integer, String, Text, UniqueConstraint, delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, declared_attr, mapped_column
from starlette.responses import Response

from libs.common.db import UTCDateTime, UUIDPrimaryKey, among
from libs.common.errors import Conflict, ValidationFailed
from libs.common.pii import PiiCategory, TableErasure, pii, table_info

HEADER = "Idempotency-Key"
REPLAY_HEADER = "Idempotent-Replayed"
_KEY_PATTERN = re.compile(r"^[\x21-\x7e]{1,255}$")


def _key_header(scoped_to: str) -> Any:
    """The ``Idempotency-Key`` header parameter, its keys scoped to ``scoped_to``."""
    return Header(
        alias=HEADER,
        min_length=1,
        max_length=255,
        description=(
            "Makes the request safe to retry: a repeat with the same key returns the first "
            "response (with `Idempotent-Replayed: true`); the same key with a different body is "
            "`422`; a key whose first request is still running is `409`. Keys are scoped to "
            f"{scoped_to} and kept for 24 hours. Use a UUID per logical operation."
        ),
        examples=["5f0c8a52-3b1e-4c39-9d0a-2f6f3b8e7c11"],
    )


IdempotencyKeyHeader = Annotated[str | None, _key_header("your account")]
StaffIdempotencyKeyHeader = Annotated[str | None, _key_header("you (the staff user)")]
"""The header on staff routes, where a key belongs to the staff user (see :func:`staff_scope`)."""

WITHHELD_PREFIX = "withheld:sha256:"
"""What a stored answer holds instead of a field it must not keep (a secret shown once)."""


def staff_scope(staff_id: uuid.UUID | str) -> str:
    """The scope of a staff user's keys: never equal to an account id, so a staff user's keys
    and an account's keys never meet."""
    return f"staff:{staff_id}"


def _withheld_marker(value: Any) -> str:
    # Only for high-entropy values (generated secrets): their digest reveals nothing.
    return WITHHELD_PREFIX + hashlib.sha256(orjson.dumps(value)).hexdigest()


class IdempotencyState(StrEnum):
    IN_FLIGHT = "in_flight"
    COMPLETED = "completed"


class IdempotencyKeyMixin(UUIDPrimaryKey):
    """Columns of a service's ``idempotency_keys`` table."""

    response_pii_category: ClassVar[PiiCategory] = PiiCategory.SHIPMENT_DETAILS
    """What personal data the stored responses of this service can hold."""

    scope: Mapped[str] = mapped_column(String(64), nullable=False)
    """Whose key this is (an account id): two accounts may use the same key."""
    key: Mapped[str] = mapped_column(String(255), nullable=False)
    fingerprint: Mapped[str] = mapped_column(String(64), nullable=False)
    """SHA-256 of method, path and the canonical body of the first request."""
    state: Mapped[str] = mapped_column(String(16), nullable=False)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    response_status: Mapped[int | None] = mapped_column(Integer)
    response_media_type: Mapped[str | None] = mapped_column(String(100))
    response_location: Mapped[str | None] = mapped_column(String(2048))
    resource_id: Mapped[uuid.UUID | None] = mapped_column()
    """The object the first request created, so its erasure can drop the stored response."""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)

    @declared_attr
    def response_body(cls) -> Mapped[str | None]:
        return mapped_column(Text, info=pii(cls.response_pii_category))

    @declared_attr.directive
    def __table_args__(cls) -> tuple[Any, ...]:
        return (
            UniqueConstraint("scope", "key", name=f"uq_{cls.__tablename__}_scope_key"),  # type: ignore[attr-defined]
            Index(f"ix_{cls.__tablename__}_expires_at", "expires_at"),  # type: ignore[attr-defined]
            Index(f"ix_{cls.__tablename__}_resource_id", "resource_id"),  # type: ignore[attr-defined]
            # A stored answer exists only for its account: an erasure deletes it.
            {"info": table_info(TableErasure.DELETE)},
        )


def request_fingerprint(method: str, path: str, body: bytes) -> str:
    """The same JSON in another key order or spacing is the same request."""
    try:
        canonical = orjson.dumps(orjson.loads(body), option=orjson.OPT_SORT_KEYS) if body else b""
    except orjson.JSONDecodeError:
        canonical = body
    digest = hashlib.sha256()
    for part in (method.upper().encode(), path.encode(), canonical):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


def validate_key(key: str) -> str:
    if not _KEY_PATTERN.fullmatch(key):
        raise ValidationFailed.for_field(
            HEADER, "1 to 255 visible ASCII characters (a UUID is ideal)", location="header"
        )
    return key


def json_response(
    status_code: int, content: BaseModel | Any, *, headers: dict[str, str] | None = None
) -> Response:
    """A JSON response rendered once, so the stored bytes and the sent bytes are the same."""
    data = content.model_dump(mode="json") if isinstance(content, BaseModel) else content
    return Response(
        content=orjson.dumps(data),
        status_code=status_code,
        media_type="application/json",
        headers=headers,
    )


@dataclass
class IdempotencyClaim:
    """The right to process one request under one key (or a stored answer to replay)."""

    store: IdempotencyStore
    session: AsyncSession
    row_id: uuid.UUID | None
    replay: Response | None = None
    completed: bool = field(default=False, init=False)

    def replayed_content(self) -> Any:
        """The stored first answer's JSON, withheld fields still replaced by their marker."""
        assert self.replay is not None  # noqa: S101 - only asked of a replay
        return orjson.loads(bytes(self.replay.body))

    def holds(self, **values: Any) -> bool:
        """Whether each value is the one the first answer had in the field of that name (a
        field it withheld)."""
        content = self.replayed_content()
        return isinstance(content, dict) and all(
            content.get(name) == _withheld_marker(value) for name, value in values.items()
        )

    def replay_with(self, **values: Any) -> Response:
        """The replay with withheld fields put back: only the values the first answer had
        (:meth:`holds`), in their places."""
        if not self.holds(**values):
            raise ValueError("a withheld field's value is not the one first answered")
        content = self.replayed_content()
        content.update(values)
        assert self.replay is not None  # noqa: S101 - replayed_content checked it
        headers = {REPLAY_HEADER: "true"}
        location = self.replay.headers.get("location")
        if location:
            headers["Location"] = location
        return Response(
            content=orjson.dumps(content),
            status_code=self.replay.status_code,
            media_type=self.replay.media_type,
            headers=headers,
        )

    async def complete(
        self,
        status_code: int,
        content: BaseModel | Any,
        *,
        resource_id: uuid.UUID | None = None,
        location: str | None = None,
        withhold: Collection[str] = (),
    ) -> Response:
        """Render the response and store it in the request's transaction.

        ``withhold`` names top-level fields sent now but never stored (a secret shown once):
        the stored answer keeps a digest in their place, and a replay puts the value back with
        :meth:`replay_with` only when it is still the same."""
        headers = {"Location": location} if location else None
        response = json_response(status_code, content, headers=headers)
        stored = bytes(response.body)
        if withhold:
            data = orjson.loads(stored)
            for name in withhold:
                if name in data:
                    data[name] = _withheld_marker(data[name])
            stored = orjson.dumps(data)
        if self.row_id is not None:
            model = self.store.model
            await self.session.execute(
                update(model)
                .where(model.id == self.row_id)
                .values(
                    state=IdempotencyState.COMPLETED.value,
                    locked_until=None,
                    response_status=status_code,
                    response_body=stored.decode(),
                    response_media_type="application/json",
                    response_location=location,
                    resource_id=resource_id,
                )
            )
        self.completed = True
        return response


class IdempotencyStore:
    """Claims, replays and expires idempotency keys kept in ``model``'s table."""

    def __init__(
        self,
        model: type[IdempotencyKeyMixin],
        *,
        ttl: timedelta = timedelta(hours=24),
        lock_timeout: timedelta = timedelta(seconds=60),
    ) -> None:
        self.model = model
        self.ttl = ttl
        self.lock_timeout = lock_timeout

    @asynccontextmanager
    async def guard(
        self,
        request: Request,
        session: AsyncSession,
        *,
        scope: str,
        key: str | None,
        now: datetime,
    ) -> AsyncIterator[IdempotencyClaim]:
        """Claim ``key`` for this request; release it when the request fails."""
        if key is None:
            yield IdempotencyClaim(self, session, None)
            return
        key = validate_key(key)
        fingerprint = request_fingerprint(request.method, request.url.path, await request.body())
        sessionmaker: async_sessionmaker[AsyncSession] = request.app.state.database.sessionmaker
        claim = await self._claim(sessionmaker, session, scope, key, fingerprint, now)
        if claim.replay is not None:
            yield claim
            return
        try:
            yield claim
        except BaseException:
            # The request's work is undone; free the key so the client's retry can run.
            await session.rollback()
            await self._release(sessionmaker, claim.row_id)
            raise

    async def _claim(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        request_session: AsyncSession,
        scope: str,
        key: str,
        fingerprint: str,
        now: datetime,
    ) -> IdempotencyClaim:
        model = self.model
        for _ in range(3):
            async with sessionmaker() as session:
                existing = await session.scalar(
                    select(model).where(model.scope == scope, model.key == key).with_for_update()
                )
                if existing is not None:
                    if existing.expires_at <= now:
                        await session.delete(existing)
                        await session.flush()
                    else:
                        if existing.fingerprint != fingerprint:
                            raise ValidationFailed.for_field(
                                HEADER,
                                "this key was already used with a different request",
                                location="header",
                                type_="idempotency_key_reused",
                            )
                        if existing.state == IdempotencyState.COMPLETED.value:
                            return IdempotencyClaim(
                                self, request_session, existing.id, replay=self._replay(existing)
                            )
                        if existing.locked_until is not None and existing.locked_until > now:
                            raise Conflict(
                                "a request with this Idempotency-Key is still being processed; "
                                "retry shortly",
                                headers={"Retry-After": "1"},
                            )
                        # The first request died without an answer: this one takes over.
                        existing.locked_until = now + self.lock_timeout
                        await session.commit()
                        return IdempotencyClaim(self, request_session, existing.id)
                row = model(  # type: ignore[call-arg]  # the concrete table's constructor
                    scope=scope,
                    key=key,
                    fingerprint=fingerprint,
                    state=IdempotencyState.IN_FLIGHT.value,
                    locked_until=now + self.lock_timeout,
                    created_at=now,
                    expires_at=now + self.ttl,
                )
                session.add(row)
                try:
                    await session.commit()
                except IntegrityError:
                    # Another request claimed the key between our read and our insert.
                    await session.rollback()
                    continue
                return IdempotencyClaim(self, request_session, row.id)
        raise Conflict("a request with this Idempotency-Key is still being processed")

    async def _release(
        self, sessionmaker: async_sessionmaker[AsyncSession], row_id: uuid.UUID | None
    ) -> None:
        if row_id is None:
            return
        model = self.model
        async with sessionmaker() as session:
            await session.execute(
                delete(model).where(
                    model.id == row_id, model.state == IdempotencyState.IN_FLIGHT.value
                )
            )
            await session.commit()

    @staticmethod
    def _replay(row: IdempotencyKeyMixin) -> Response:
        headers = {REPLAY_HEADER: "true"}
        if row.response_location:
            headers["Location"] = row.response_location
        return Response(
            content=(row.response_body or "").encode(),
            status_code=row.response_status or 200,
            media_type=row.response_media_type or "application/json",
            headers=headers,
        )


async def purge_expired_keys(
    sessionmaker: async_sessionmaker[AsyncSession],
    model: type[IdempotencyKeyMixin],
    *,
    now: datetime,
    batch_size: int = 5000,
) -> int:
    """Delete expired keys in short batches; returns how many went."""
    total = 0
    while True:
        async with sessionmaker() as session:
            ids = select(model.id).where(model.expires_at <= now).limit(batch_size)
            result = await session.execute(delete(model).where(model.id.in_(ids.scalar_subquery())))
            await session.commit()
        deleted = int(getattr(result, "rowcount", 0) or 0)
        total += deleted
        if deleted < batch_size:
            return total


async def forget_keys(
    session: AsyncSession,
    model: type[IdempotencyKeyMixin],
    *,
    scope: str | None = None,
    resource_ids: Sequence[uuid.UUID] = (),
) -> int:
    """Drop stored responses of a scope or of erased objects (they may hold personal data)."""
    deleted = 0
    if scope is not None:
        result = await session.execute(delete(model).where(model.scope == scope))
        deleted += int(getattr(result, "rowcount", 0) or 0)
    if resource_ids:
        result = await session.execute(
            delete(model).where(among(session, model.resource_id, resource_ids))
        )
        deleted += int(getattr(result, "rowcount", 0) or 0)
    return deleted


async def get_idempotency(request: Request) -> IdempotencyStore:
    """The service's store, built at start-up (``app.state.idempotency``)."""
    store: IdempotencyStore = request.app.state.idempotency
    return store


IdempotencyDep = Annotated[IdempotencyStore, Depends(get_idempotency)]
