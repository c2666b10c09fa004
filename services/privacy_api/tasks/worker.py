"""The worker: claims tasks under a lease, carries them out, retries with backoff, closes
finished requests and sends queued mail. Runs inside the API process (lifespan) and as
``python -m services.privacy_api worker``; any number may run against one database."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import socket
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import structlog
from fastapi import FastAPI

from libs.common.db import retry_while_unavailable, uuid7
from libs.common.outbox import backoff
from services.privacy_api.context import Collaborators, collaborators_of
from services.privacy_api.deadlines import (
    purge_expired_exports,
    purge_expired_idempotency_keys,
    purge_sent_mail,
)
from services.privacy_api.models import (
    PrivacyRequest,
    PrivacyTask,
    RequestSource,
    RequestType,
    RestrictionBasis,
    ServiceName,
    TaskAction,
    TaskStatus,
)
from services.privacy_api.outbox import service as outbox
from services.privacy_api.requests import completion
from services.privacy_api.subjects import service as own_data
from services.privacy_api.subjects.repository import SubjectKeys
from services.privacy_api.tasks import repository
from services.privacy_api.tasks.executors import PartWriter, Permanent, RemoteService, Transient

log = structlog.get_logger("privacy.worker")


class LeaseLost(Exception):
    """Another worker took the task over (our lease expired); our outcome is discarded."""


# Whose identity the privacy officer checked: only then is a phone number proven (0303).
OFFICER_CHECKED = frozenset({RequestSource.LETTER.value, RequestSource.DISCLOSURE.value})


def is_phone_proven(request: PrivacyRequest) -> bool:
    """A mailed code proves an address, a login an account; nothing online proves a phone
    number, so one stored with an online request (before 0303 refused it) finds nothing."""
    return request.source in OFFICER_CHECKED


def subject_of(request: PrivacyRequest) -> dict[str, Any]:
    """The subject as the services match it: only identifiers the requester proved."""
    return {
        "account_id": str(request.account_id) if request.account_id else None,
        "email": request.email,
        "phone": request.phone if is_phone_proven(request) else None,
    }


def restriction_basis(request: PrivacyRequest) -> RestrictionBasis:
    if request.type == RequestType.OBJECTION.value:
        return RestrictionBasis.OBJECTION
    return RestrictionBasis.RESTRICTION


class Worker:
    def __init__(self, app: Collaborators, *, owner: str | None = None) -> None:
        self.app = app
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid7().hex[-8:]}"
        self.remote = {
            ServiceName.IDENTITY.value: RemoteService(app.identity, app.service_tokens),
            ServiceName.SHIPPING.value: RemoteService(app.shipping, app.service_tokens),
        }
        self._lanes: list[asyncio.Event] = []
        """One wake-up call per running lane."""
        self._maintained_at: datetime | None = None
        self._executing: set[uuid.UUID] = set()
        self._claims_uncertain = False

    @property
    def lease(self) -> timedelta:
        return timedelta(seconds=self.app.settings.task_lease_seconds)

    def wake(self) -> None:
        """Look for due work now instead of at the next poll (a task was just committed)."""
        for lane in self._lanes:
            lane.set()

    # ----------------------------------------------------------------------------------------

    async def run_one_task(self) -> bool:
        """Claim and carry out one task; ``False`` when none is due."""
        if self._claims_uncertain:
            await self._release_unknown_claims()
        task: PrivacyTask | None = None
        try:
            async with self.app.database.sessionmaker() as session, session.begin():
                task = await repository.claim_next(
                    session, owner=self.owner, now=self.app.now(), lease=self.lease
                )
                if task is not None:
                    # Known as ours before the commit: a release by another lane must keep it.
                    self._executing.add(task.id)
                request = await session.get(PrivacyRequest, task.request_id) if task else None
        except Exception:
            # The claim may have been committed although its answer was lost.
            self._claims_uncertain = True
            if task is not None:
                self._executing.discard(task.id)
            raise
        if task is None:
            return False
        try:
            if request is not None:
                await self._execute(task, request)
        finally:
            self._executing.discard(task.id)
        return request is not None

    async def _release_unknown_claims(self) -> None:
        async with self.app.database.sessionmaker() as session, session.begin():
            released = await repository.release_claims(
                session, self.owner, keep=set(self._executing), now=self.app.now()
            )
        self._claims_uncertain = False
        if released:
            log.warning("task_claims_released", owner=self.owner, released=released)

    async def finish_requests(self) -> int:
        async with self.app.database.sessionmaker() as session:
            ready = await repository.requests_to_finish(session, self.app.now())
        finished = 0
        for request_id in ready:
            if await completion.finish_request(self.app, request_id):
                finished += 1
        return finished

    async def send_mail(self) -> int:
        return await outbox.send_due(
            self.app.database.sessionmaker, self.app.mailer, self.app.clock, owner=self.owner
        )

    async def run_once(self) -> bool:
        """One step of work: a task, else closing requests and sending mail."""
        if await self.run_one_task():
            return True
        finished = await self.finish_requests()
        sent = await self.send_mail()
        return bool(finished or sent)

    async def run_until_idle(self, *, max_steps: int = 10_000) -> None:
        for _ in range(max_steps):
            if not await self.run_once():
                return

    async def run(self, stop: asyncio.Event) -> None:
        """Work until ``stop``: one lane that also closes requests, sends mail and maintains,
        and ``worker_concurrency - 1`` lanes that only carry out tasks, so that the services'
        shares of one request (an identity export, a shipping export) run side by side."""
        log.info("worker_started", owner=self.owner)
        extra = [
            asyncio.create_task(self._lane(stop, tasks_only=True))
            for _ in range(self.app.settings.worker_concurrency - 1)
        ]
        try:
            await self._lane(stop, tasks_only=False)
        finally:
            await asyncio.gather(*extra, return_exceptions=True)
        log.info("worker_stopped", owner=self.owner)

    async def _lane(self, stop: asyncio.Event, *, tasks_only: bool) -> None:
        woken = asyncio.Event()
        self._lanes.append(woken)
        try:
            await self._work(stop, woken, tasks_only=tasks_only)
        finally:
            self._lanes.remove(woken)

    async def _work(self, stop: asyncio.Event, woken: asyncio.Event, *, tasks_only: bool) -> None:
        while not stop.is_set():
            # Cleared before looking, not after: a wake-up during the look is not lost.
            woken.clear()
            try:
                if tasks_only:
                    busy = await self.run_one_task()
                else:
                    busy = await self.run_once()
                    await self._maybe_maintain()
            except Exception:
                # The database or a disk hiccup: keep the worker alive, try again shortly.
                log.exception("worker_step_failed", owner=self.owner)
                busy = False
            if busy:
                # Another task may be due, or the request may be ready to close: let the
                # resting lanes look too.
                self.wake()
                await asyncio.sleep(0)
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    _first(stop, woken), timeout=self.app.settings.worker_poll_seconds
                )

    async def _maybe_maintain(self) -> None:
        now = self.app.now()
        interval = timedelta(seconds=self.app.settings.maintenance_interval_seconds)
        if self._maintained_at is not None and now - self._maintained_at < interval:
            return
        self._maintained_at = now
        await purge_expired_exports(self.app)
        await purge_sent_mail(self.app)
        await purge_expired_idempotency_keys(self.app)

    # ----------------------------------------------------------------------------------------

    async def _execute(self, task: PrivacyTask, request: PrivacyRequest) -> None:
        logger = log.bind(task_id=str(task.id), request_id=str(request.id), service=task.service)
        try:
            if task.service == ServiceName.PRIVACY.value:
                await self._run_own_share(task, request)
                logger.info("task_succeeded", action=task.action, attempt=task.attempts)
                return
            result = await self._call_service(task, request)
        except LeaseLost:
            logger.warning("task_lease_lost")
            return
        except Transient as exc:
            await self._retry(task, str(exc))
            logger.warning("task_retry", action=task.action, attempt=task.attempts, error=str(exc))
            return
        except Permanent as exc:
            await self._finish(task, TaskStatus.FAILED, error=str(exc))
            logger.warning("task_failed", action=task.action, error=str(exc))
            return
        except Exception as exc:
            logger.exception("task_error", action=task.action)
            await self._retry(task, f"internal error: {type(exc).__name__}")
            return
        await self._finish(task, TaskStatus.SUCCEEDED, result=result)
        logger.info("task_succeeded", action=task.action, attempt=task.attempts)

    async def _call_service(self, task: PrivacyTask, request: PrivacyRequest) -> dict[str, Any]:
        remote = self.remote[task.service]
        body: dict[str, Any] = {"subject": subject_of(request), "request_id": str(request.id)}
        action = TaskAction(task.action)
        if action is TaskAction.EXPORT:
            part = completion.part_path(self.app, request.id, task.service)
            return await remote.export(body, part, categories=completion.selection(request))
        if action is TaskAction.ERASE:
            return await remote.call("erase", body)
        if action is TaskAction.RESTRICT:
            basis = restriction_basis(request).value
            return await remote.call("restrict", {**body, "restricted": True, "basis": basis})
        if action is TaskAction.RECTIFY:
            changes = (request.changes or {}).get(task.service) or {}
            return await remote.call("rectify", {**body, "changes": changes})
        raise Permanent(f"{task.service} has no action {task.action}")

    async def _run_own_share(self, task: PrivacyTask, request: PrivacyRequest) -> None:
        """Privacy's own data, changed in the same transaction that marks the task done."""
        keys = SubjectKeys(
            account_id=request.account_id,
            email_index=request.email_index,
            phone_index=request.phone_index if is_phone_proven(request) else None,
        )
        now = self.app.now()
        action = TaskAction(task.action)
        async with self.app.database.sessionmaker() as session, session.begin():
            if action is TaskAction.EXPORT:
                writer = PartWriter(
                    completion.part_path(self.app, request.id, task.service),
                    categories=completion.selection(request),
                )
                await writer.open()
                try:
                    async for line in own_data.export_lines(session, keys):
                        await writer.add(line)
                    result = await writer.close()
                except BaseException:
                    await writer.discard()
                    raise
            elif action is TaskAction.ERASE:
                result = await own_data.erase(session, keys, request_id=request.id, now=now)
            elif action is TaskAction.RESTRICT:
                result = await own_data.restrict(
                    session,
                    keys,
                    request_id=request.id,
                    restricted=True,
                    basis=restriction_basis(request),
                    now=now,
                )
            elif action is TaskAction.OBJECT:
                result = await own_data.object_to_processing(
                    session, keys, request_id=request.id, grounds=request.grounds, now=now
                )
            else:
                raise Permanent(f"privacy has no action {task.action}")
            done = await repository.finish(
                session, task.id, self.owner, status=TaskStatus.SUCCEEDED, now=now, result=result
            )
            if not done:
                raise LeaseLost

    def _backoff(self, attempts: int) -> timedelta:
        settings = self.app.settings
        delay = backoff(
            attempts,
            first=timedelta(seconds=settings.task_backoff_initial_seconds),
            cap=timedelta(seconds=settings.task_backoff_max_seconds),
        )
        # ±10% jitter, so tasks that failed together do not all come back together.
        jitter = 0.9 + secrets.randbelow(201) / 1000
        return delay * jitter

    def _time_left(self, task: PrivacyTask) -> float:
        """Seconds our lease on ``task`` still holds, less a margin for the last write."""
        if task.lease_expires_at is None:
            return 0.0
        return (task.lease_expires_at - self.app.now()).total_seconds() - 5

    async def _retry(self, task: PrivacyTask, error: str) -> None:
        at = self.app.now() + self._backoff(task.attempts)

        async def write() -> None:
            async with self.app.database.sessionmaker() as session, session.begin():
                await repository.retry_later(
                    session, task.id, self.owner, at=at, error=error[:2000]
                )

        # A database restart must not leave the task claimed until its lease runs out.
        await retry_while_unavailable(write, within=self._time_left(task))

    async def _finish(
        self,
        task: PrivacyTask,
        status: TaskStatus,
        *,
        result: dict[str, Any] | None = None,
        error: str | None = None,
    ) -> None:

        async def write() -> bool:
            async with self.app.database.sessionmaker() as session, session.begin():
                return await repository.finish(
                    session,
                    task.id,
                    self.owner,
                    status=status,
                    now=self.app.now(),
                    result=result,
                    error=error[:2000] if error else None,
                )

        # The service has answered; losing that record to a database restart would make the
        # call again once the lease ran out (harmless, the request id makes it idempotent, but
        # late).
        done = await retry_while_unavailable(write, within=self._time_left(task))
        if not done:
            log.warning("task_lease_lost", task_id=str(task.id))


async def _first(*events: asyncio.Event) -> None:
    waiters = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()


@contextlib.asynccontextmanager
async def worker_lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Start the worker with the app (when enabled) and stop it before the app's resources go."""
    worker = Worker(collaborators_of(app.state))
    app.state.worker = worker
    # A Database over one connection (a test's rolled-back transaction) cannot be shared with
    # a background task: such callers drive ``app.state.worker`` themselves.
    single_connection = app.state.database.is_shared_connection
    if not app.state.settings.worker_enabled or single_connection:
        yield
        return
    stop = asyncio.Event()
    runner = asyncio.create_task(worker.run(stop), name=f"privacy-worker-{uuid.uuid4().hex[:6]}")
    try:
        yield
    finally:
        stop.set()
        try:
            await asyncio.wait_for(asyncio.shield(runner), timeout=10)
        except TimeoutError:
            # A task mid-call is abandoned; its lease expires and another worker resumes it.
            runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await runner
