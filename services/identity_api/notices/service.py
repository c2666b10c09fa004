"""Accepting a notice for an account holder: recorded under the sender's id and mailed once,
in the request's transaction (the mail through identity's outbox, decision 0106)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.errors import AccountNotFound, Conflict
from services.identity_api.accounts import repository as accounts
from services.identity_api.mail import messages, outbox
from services.identity_api.models import AccountNoticeRecord
from services.identity_api.notices import repository
from services.identity_api.notices.schemas import AccountNotice, AccountNoticeAccepted


def _accepted(record: AccountNoticeRecord, account_id: uuid.UUID) -> AccountNoticeAccepted:
    """The first acceptance's answer; the same notice id for another account is a sender's bug,
    not a retry."""
    if record.account_id != account_id:
        raise Conflict("a notice with this id was already accepted for another account")
    return AccountNoticeAccepted(
        id=record.id, account_id=record.account_id, kind=record.kind, accepted_at=record.accepted_at
    )


async def accept(
    session: AsyncSession, account_id: uuid.UUID, notice: AccountNotice, *, now: datetime
) -> AccountNoticeAccepted:
    known = await repository.get(session, notice.id)
    if known is not None:
        return _accepted(known, account_id)
    account = await accounts.get_active(session, account_id)
    if account is None:
        raise AccountNotFound("no account with this id")
    record = AccountNoticeRecord(
        id=notice.id, account_id=account.id, kind=notice.kind, accepted_at=now
    )
    if not await repository.add(session, record):
        known = await repository.get(session, notice.id)
        assert known is not None  # noqa: S101 - the insert just conflicted on it
        return _accepted(known, account_id)
    assert account.email is not None  # noqa: S101 - active accounts have an address
    endpoint = notice.webhook_endpoint
    mail = messages.webhook_endpoint_switched_off(
        account.email,
        name=account.contact_person or account.name,
        endpoint_id=endpoint.id,
        url=endpoint.url,
        failing_since=endpoint.failing_since,
        disabled_at=endpoint.disabled_at,
    )
    await outbox.enqueue(session, mail, now=now, account_id=account.id)
    return _accepted(record, account_id)
