"""Data-subject requests over identity's data, driven by the columns' PII annotations.

Export (AVG art. 15 and 20) streams every annotated table's rows of the subject; erasure
(art. 17) deletes rows that exist only for the subject and anonymises the rest, keeping what a
legal obligation keeps (reported in ``kept``); restriction (art. 18) and objection (art. 21)
flag the account; rectification (art. 16) applies validated changes.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any, TypeVar

import orjson
from pydantic import BaseModel, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from libs.common.crypto import FieldCipher
from libs.common.errors import ValidationFailed, validation_errors
from libs.common.pii import (
    TableErasure,
    erasure_values,
    export_lines,
    export_meta,
    export_row,
    in_scope,
    retained_fields,
)
from services.identity_api.accounts.schemas import AccountUpdate
from services.identity_api.accounts.service import apply_changes, iban_context
from services.identity_api.auth.service import Context
from services.identity_api.models import Account
from services.identity_api.subjects import repository
from services.identity_api.subjects.blind_index import email_search
from services.identity_api.subjects.repository import SUBJECT_TABLES, SubjectTable
from services.identity_api.subjects.schemas import (
    Basis,
    EraseResult,
    KeptField,
    RectifyResult,
    RestrictResult,
    Subject,
)

SERVICE = "identity"
ResultT = TypeVar("ResultT", bound=BaseModel)


async def _ids(session: AsyncSession, subject: Subject) -> list[uuid.UUID]:
    # ``subject.phone`` is never used: no account's phone number is confirmed by anyone.
    return await repository.matching_account_ids(
        session, account_id=subject.account_id, email=subject.email
    )


def _account_line(
    cipher: FieldCipher, entry: SubjectTable, row: Any, categories: frozenset[str] | None
) -> bytes:
    record = export_row(entry.table, row, categories=categories)
    if "iban_encrypted" in record:
        # The subject gets their own IBAN back in clear, not our ciphertext.
        sealed = record.pop("iban_encrypted")
        record["iban"] = cipher.decrypt(sealed, context=iban_context(row.id)) if sealed else None
    line = {"category": entry.category, "table": entry.table.name, "record": record}
    return orjson.dumps(line) + b"\n"


def _searched(row: Any, search: str, email: str) -> SimpleNamespace:
    """A staff search for the subject's address as the subject reads it: the address they
    gave in place of its blind index (``search``, where the query starts)."""
    fields = dict(row._mapping)
    fields["query"] = f"email={email}{str(fields['query'])[len(search) :]}"
    return SimpleNamespace(**fields)


async def export(
    sessionmaker: async_sessionmaker[AsyncSession],
    cipher: FieldCipher,
    subject: Subject,
    *,
    hash_key: bytes,
    categories: frozenset[str] | None = None,
) -> AsyncIterator[bytes]:
    """NDJSON, produced in blocks of lines while the response streams; with ``categories``,
    only the data of those categories (``libs.common.pii.in_scope``)."""
    async with sessionmaker() as session:
        ids = await _ids(session, subject)
        for entry in SUBJECT_TABLES:
            if not ids or not in_scope(entry.table, categories):
                continue
            async for rows in repository.stream_rows(session, entry, ids):
                if entry.model is Account:
                    yield export_meta(entry.table, categories) + b"".join(
                        _account_line(cipher, entry, row, categories) for row in rows
                    )
                else:
                    yield export_lines(entry.category, entry.table, rows, categories=categories)
        searches = repository.STAFF_SEARCHES
        if subject.email is not None and in_scope(searches.table, categories):
            # Searches for the address that found no account are the subject's too (0108).
            search = email_search(hash_key, subject.email)
            async for rows in repository.stream_searches(session, search):
                searched = [_searched(row, search, subject.email) for row in rows]
                yield export_lines(
                    searches.category, searches.table, searched, categories=categories
                )


def fiscal_retention_end(now: datetime, years: int) -> datetime:
    """When an erased account's fiscal record may go: ``years`` after the end of the financial
    (calendar) year of the erasure, the last year in which it can have been invoiced (AWR art.
    52(4)), not ``years`` from the day itself, which would end before that year's records may."""
    return datetime(now.year + 1 + years, 1, 1, tzinfo=UTC)


async def erase(
    session: AsyncSession, ctx: Context, subject: Subject, request_id: str
) -> EraseResult:
    stored = await repository.stored_result(session, request_id, "erase")
    if stored is not None:
        return EraseResult.model_validate(stored)
    ids = await _ids(session, subject)
    erased: dict[str, int] = {}
    kept: list[KeptField] = []
    if ids:
        retain_until = fiscal_retention_end(ctx.now, ctx.runtime.settings.fiscal_retention_years)
        for entry in SUBJECT_TABLES:
            if entry.on_erase is TableErasure.DELETE:
                count = await repository.delete_rows(session, entry, ids)
            else:
                values = erasure_values(entry.table)
                if entry.model is Account:
                    values |= {
                        "erased_at": ctx.now,
                        "retain_until": retain_until,
                        "email_verified_at": None,
                        "updated_at": ctx.now,
                    }
                count = await repository.update_rows(session, entry, ids, values)
                if count:
                    kept += [KeptField(**f.as_dict()) for f in retained_fields(entry.table)]
            if count:
                erased[entry.table.name] = count
        ctx.runtime.api_key_cache.clear()
    if subject.email is not None:
        staff_access = repository.STAFF_SEARCHES.table
        search = email_search(ctx.runtime.hash_key, subject.email)
        count = await repository.erase_searches(session, search, erasure_values(staff_access))
        if count:
            erased[staff_access.name] = erased.get(staff_access.name, 0) + count
            known = {(field.table, field.field) for field in kept}
            kept += [
                KeptField(**field.as_dict())
                for field in retained_fields(staff_access)
                if (field.table, field.column) not in known
            ]
    result = EraseResult(service=SERVICE, erased=erased, kept=kept)
    return await _remember(session, request_id, "erase", result)


async def restrict(
    session: AsyncSession, subject: Subject, request_id: str, *, restricted: bool, basis: Basis
) -> RestrictResult:
    operation = f"restrict-{basis.value}-{'on' if restricted else 'off'}"
    stored = await repository.stored_result(session, request_id, operation)
    if stored is not None:
        return RestrictResult.model_validate(stored)
    ids = await _ids(session, subject)
    column = "processing_restricted" if basis is Basis.RESTRICTION else "processing_objected"
    accounts = SUBJECT_TABLES[0]
    count = await repository.update_rows(session, accounts, ids, {column: restricted}) if ids else 0
    result = RestrictResult(
        service=SERVICE, restricted={accounts.table.name: count} if count else {}
    )
    return await _remember(session, request_id, operation, result)


async def rectify(
    session: AsyncSession,
    ctx: Context,
    subject: Subject,
    request_id: str,
    changes: dict[str, Any],
) -> RectifyResult:
    stored = await repository.stored_result(session, request_id, "rectify")
    if stored is not None:
        return RectifyResult.model_validate(stored)
    try:
        update = AccountUpdate.model_validate(changes)
    except ValidationError as exc:
        errors = validation_errors(
            [{**err, "loc": ("body", "changes", *err["loc"])} for err in exc.errors()]
        )
        raise ValidationFailed(
            "; ".join(f"{e.field}: {e.message}" for e in errors), errors=errors
        ) from exc
    fields: set[str] = set()
    count = 0
    for account_id in await _ids(session, subject):
        account = await session.get(Account, account_id)
        if account is None or account.erased_at is not None:
            continue
        changed = await apply_changes(session, ctx, account, update, field_prefix="changes.")
        if changed:
            count += 1
            fields.update(changed)
    result = RectifyResult(
        service=SERVICE, rectified={"accounts": count} if count else {}, fields=sorted(fields)
    )
    return await _remember(session, request_id, "rectify", result)


async def _remember(
    session: AsyncSession, request_id: str, operation: str, result: ResultT
) -> ResultT:
    response = result.model_dump(mode="json")
    if not await repository.store_result(session, request_id, operation, response):
        stored = await repository.stored_result(session, request_id, operation)
        return type(result).model_validate(stored)
    return result
