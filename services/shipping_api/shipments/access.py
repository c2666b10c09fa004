"""Who may read shipments: the account that owns them (an API key only those of its own mode),
and support staff, whose every read is recorded (who, what, when, why). Privacy statement:
"Alleen medewerkers die uw persoonsgegevens nodig hebben, kunnen deze inzien"."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from fastapi import Depends, Header
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.auth import (
    ACCESS_REASON_HEADER,
    Principal,
    PrincipalDep,
    PrincipalKind,
    Role,
    Scope,
    stated_reason,
)
from libs.common.db import uuid7
from libs.common.errors import Forbidden
from services.shipping_api.models import SupportAccess
from services.shipping_api.vocabulary import ShipmentMode

SUPPORT_ROLES = (Role.SUPPORT, Role.ADMIN)


def key_mode(principal: Principal) -> ShipmentMode | None:
    """The only mode of shipments an API key sees and acts on (0205): a ``pp_test_`` key the
    sandbox's, a live key the live ones. None: both, for the account holder's own login."""
    if principal.kind is not PrincipalKind.API_KEY:
        return None
    return ShipmentMode.TEST if principal.mode == "test" else ShipmentMode.LIVE


@dataclass(frozen=True, slots=True)
class ShipmentReader:
    """The account whose shipments are read, or a staff member reading any account's."""

    account_id: uuid.UUID | None
    mode: ShipmentMode | None = None
    """An API key's mode: only shipments of that mode exist for it (``key_mode``)."""
    staff_id: uuid.UUID | None = None
    reason: str | None = None

    @property
    def is_staff(self) -> bool:
        return self.staff_id is not None


async def shipment_reader(
    principal: PrincipalDep,
    reason: Annotated[
        str | None,
        Header(
            alias=ACCESS_REASON_HEADER,
            max_length=500,
            description="Staff only, required: why you look at this shipment (audited).",
            examples=["Recipient called: parcel not received (ticket 4711)"],
        ),
    ] = None,
) -> ShipmentReader:
    if principal.is_account_holder:
        if not principal.has_scopes(Scope.SHIPMENTS_READ.value):
            raise Forbidden("the credential lacks the scope(s): shipments:read")
        return ShipmentReader(account_id=principal.account_id, mode=key_mode(principal))
    if principal.is_staff and principal.has_role(*SUPPORT_ROLES):
        return ShipmentReader(
            account_id=None, staff_id=principal.staff_id, reason=stated_reason(reason)
        )
    raise Forbidden("shipments are readable by their account and by support staff only")


ShipmentReaderDep = Annotated[ShipmentReader, Depends(shipment_reader)]


async def record_staff_access(
    session: AsyncSession,
    reader: ShipmentReader,
    *,
    action: str,
    now: datetime,
    account_id: uuid.UUID | None = None,
    shipment_id: uuid.UUID | None = None,
) -> None:
    """Written in the request's transaction: no read without its audit entry."""
    await record_staff_reads(
        session, reader, action=action, now=now, seen=[(account_id, shipment_id)]
    )


async def record_staff_reads(
    session: AsyncSession,
    reader: ShipmentReader,
    *,
    action: str,
    now: datetime,
    seen: Sequence[tuple[uuid.UUID | None, uuid.UUID | None]],
) -> None:
    """One entry per (account, shipment) seen, all in one statement of the request's
    transaction."""
    if reader.staff_id is None or not seen:
        return
    await session.execute(
        insert(SupportAccess).values(
            [
                {
                    "id": uuid7(),
                    "staff_id": reader.staff_id,
                    "action": action,
                    "account_id": account_id,
                    "shipment_id": shipment_id,
                    "reason": reader.reason or "",
                    "accessed_at": now,
                }
                for account_id, shipment_id in seen
            ]
        )
    )
