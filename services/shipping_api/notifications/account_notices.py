"""Notices to account holders: queued in the transaction of what they tell (a failing webhook
endpoint switched off, decision 0206), handed to identity, which mails the account holder.

``POST /internal/v1/accounts/{account_id}/notices`` on identity, with a service token carrying
``internal:accounts.notify``. Identity de-duplicates on the notice's id, so a notice whose answer
was lost is sent again safely. Due rows are claimed with a lease (``FOR UPDATE SKIP LOCKED`` on
PostgreSQL), no transaction is held open during the call, and a row is deleted once identity has
the notice, the account is gone or its window closes.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import httpx
import structlog
from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from libs.common.auth import ServiceTokenProvider
from libs.common.db import retry_while_unavailable, uuid7
from libs.common.errors import PROBLEM_BASE, AccountNotFound, DomainError, Unauthorized
from libs.common.http import ServiceCaller
from libs.common.notices import NoticeKind
from libs.common.outbox import backoff, claim_due
from services.shipping_api.models import AccountNotice, WebhookEndpoint
from services.shipping_api.webhooks.outbox import EndpointDisabledReason

log = structlog.get_logger("account_notices")

NOTICE_WINDOW = timedelta(days=3)
"""How long identity is tried: an outage of a weekend, and no longer (the notice is late news by
then, and the endpoint's read model says the same)."""
FIRST_RETRY = timedelta(seconds=30)
MAX_RETRY_GAP = timedelta(hours=1)


TAKEN = (200, 201, 202, 204)
"""Identity has the notice (202 is its answer, also to a repeat of the same id)."""


def next_notice_attempt(now: datetime, attempts: int) -> datetime:
    """30 s, 1 min, 2 min, 4 min ... capped at 1 h after the ``attempts``-th failure."""
    moment: datetime = now + backoff(attempts, first=FIRST_RETRY, cap=MAX_RETRY_GAP)
    return moment


async def queue_endpoint_switched_off(
    session: AsyncSession,
    *,
    account_id: uuid.UUID,
    endpoint_id: uuid.UUID,
    url: str,
    failing_since: datetime | None,
    disabled_at: datetime,
) -> uuid.UUID:
    """Queue the notice that the service switched a failing endpoint off, in the caller's
    transaction: a switch-off that is rolled back queues nothing, a committed one its notice."""
    notice_id = uuid7()
    await session.execute(
        insert(AccountNotice).values(
            id=notice_id,
            account_id=account_id,
            kind=NoticeKind.WEBHOOK_ENDPOINT_SWITCHED_OFF.value,
            payload={
                "id": str(endpoint_id),
                "url": url,
                "failing_since": failing_since.isoformat() if failing_since else None,
                "disabled_at": disabled_at.isoformat(),
            },
            attempts=0,
            next_attempt_at=disabled_at,
            give_up_at=disabled_at + NOTICE_WINDOW,
            created_at=disabled_at,
        )
    )
    return notice_id


async def _still_true(session: AsyncSession, notice: AccountNotice) -> bool:
    """Whether what the notice tells is still so when it goes out: the endpoint it names is
    still switched off after failing."""
    if notice.kind != NoticeKind.WEBHOOK_ENDPOINT_SWITCHED_OFF:
        return True
    reason = await session.scalar(
        select(WebhookEndpoint.disabled_reason).where(
            WebhookEndpoint.id == uuid.UUID(notice.payload["id"]),
            WebhookEndpoint.is_active.is_(False),
        )
    )
    return bool(reason == EndpointDisabledReason.FAILING)


def _is_account_not_found(response: httpx.Response) -> bool:
    if response.status_code != 404:
        return False
    try:
        kind = response.json().get("type")
    except (ValueError, AttributeError):
        return False
    return bool(kind == PROBLEM_BASE + AccountNotFound.slug)


class _Retry(Exception):
    """Identity did not take the notice this time; ``defect`` when trying again will not help
    until someone fixes something (our request, our credentials, a missing scope)."""

    def __init__(self, error: str, *, status_code: int | None = None, defect: bool) -> None:
        super().__init__(error)
        self.error = error[:300]
        self.status_code = status_code
        self.defect = defect


class AccountNoticeDispatcher:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        identity: ServiceCaller,
        tokens: ServiceTokenProvider,
        *,
        batch_size: int = 50,
        lease: timedelta = timedelta(minutes=2),
    ) -> None:
        """``identity``: the process's one caller of identity (on its one shared client)."""
        self.sessionmaker = sessionmaker
        self.identity = identity
        self.tokens = tokens
        self.batch_size = batch_size
        self.lease = lease

    async def run_once(self, now: datetime) -> int:
        """Send every notice due at ``now`` (one batch); returns how many were claimed."""
        claimed = await self._claim(now)
        # Our claim holds for the lease; keep a margin for the last write. Rows not reached
        # by then are taken again once their claim lapses.
        deadline = time.monotonic() + self.lease.total_seconds() - 5
        for notice_id in claimed:
            if time.monotonic() >= deadline:
                break
            await self._send(notice_id, now, deadline)
        return len(claimed)

    async def _claim(self, now: datetime) -> Sequence[uuid.UUID]:
        return await claim_due(
            self.sessionmaker,
            AccountNotice,
            now=now,
            lease=self.lease,
            limit=self.batch_size,
        )

    async def _send(self, notice_id: uuid.UUID, now: datetime, deadline: float) -> None:
        async def read() -> tuple[AccountNotice | None, bool]:
            async with self.sessionmaker() as session:
                notice: AccountNotice | None = await session.get(AccountNotice, notice_id)
                still_true = notice is not None and await _still_true(session, notice)
            return notice, still_true

        notice, still_true = await retry_while_unavailable(read, within=deadline - time.monotonic())
        if notice is None:
            return  # erased with its account meanwhile
        fields = {
            "notice_id": str(notice.id),
            "account_id": str(notice.account_id),
            "kind": notice.kind,
        }
        if not still_true:
            # Switched on again (or deleted) by the account holder before it went out: the
            # mail would tell them to do what they already did.
            await self._delete(notice_id, deadline)
            log.info("account_notice_dropped", **fields, reason="no longer true")
            return
        try:
            status_code = await self._post(notice)
        except _Retry as failure:
            attempts = notice.attempts + 1
            if now >= notice.give_up_at:
                await self._delete(notice_id, deadline)
                log.error(
                    "account_notice_given_up",
                    **fields,
                    attempts=attempts,
                    error=failure.error,
                    status_code=failure.status_code,
                )
                return
            # The last attempt is made when the window closes.
            retry_at = min(next_notice_attempt(now, attempts), notice.give_up_at)
            await self._retry_later(notice_id, attempts, failure.error, retry_at, deadline)
            report = log.error if failure.defect else log.warning
            report(
                "account_notice_failed",
                **fields,
                attempts=attempts,
                error=failure.error,
                status_code=failure.status_code,
            )
            return
        await self._delete(notice_id, deadline)
        if status_code == 404:
            # The account no longer exists (erased): nobody is left to tell.
            log.info("account_notice_dropped", **fields, reason="account not found")
        else:
            log.info("account_notice_delivered", **fields, attempts=notice.attempts + 1)

    async def _post(self, notice: AccountNotice) -> int:
        """Identity's answer when it is final: 2xx (taken, also for a repeat of the id) or its
        404 for an account it does not have; raises ``_Retry`` for everything else (a 404 of
        another kind is a route this identity does not serve, not an erased account)."""
        path = f"/internal/v1/accounts/{notice.account_id}/notices"
        body: dict[str, Any] = {"id": str(notice.id), "kind": notice.kind}
        if notice.kind == NoticeKind.WEBHOOK_ENDPOINT_SWITCHED_OFF:
            body["webhook_endpoint"] = notice.payload
        try:
            response = await self._request(path, body)
            if response.status_code == 401:
                # Our service token was rotated or expired early: fetch a new one once.
                self.tokens.invalidate()
                response = await self._request(path, body)
        except Unauthorized as exc:
            raise _Retry("identity refused this service's credentials", defect=True) from exc
        except DomainError as exc:
            # A 5xx, a timeout, identity unreachable: it comes back.
            raise _Retry(str(exc), defect=False) from exc
        status_code = response.status_code
        if 200 <= status_code < 300 or _is_account_not_found(response):
            return status_code
        # Any other 4xx (409, 422, a second 401, a 403 for a scope we lack) means our request,
        # credentials or scope are wrong: a defect to fix, not an outage. The notice waits,
        # with backoff, until it is fixed or its window closes.
        raise _Retry(f"identity answered {status_code}", status_code=status_code, defect=True)

    async def _request(self, path: str, body: dict[str, Any]) -> httpx.Response:
        return await self.identity.request(
            "POST", path, json=body, headers=await self.tokens.headers(), expected=TAKEN
        )

    async def _delete(self, notice_id: uuid.UUID, deadline: float) -> None:
        async def write() -> None:
            async with self.sessionmaker() as session:
                await session.execute(delete(AccountNotice).where(AccountNotice.id == notice_id))
                await session.commit()

        await retry_while_unavailable(write, within=deadline - time.monotonic())

    async def _retry_later(
        self, notice_id: uuid.UUID, attempts: int, error: str, retry_at: datetime, deadline: float
    ) -> None:
        async def write() -> None:
            async with self.sessionmaker() as session:
                await session.execute(
                    update(AccountNotice)
                    .where(AccountNotice.id == notice_id)
                    .values(
                        attempts=attempts,
                        last_error=error,
                        next_attempt_at=retry_at,
                    )
                )
                await session.commit()

        await retry_while_unavailable(write, within=deadline - time.monotonic())
