"""Printing labels: the label data of shipments, and ``created -> label_printed``."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.errors import NotFound
from services.shipping_api.carriers.catalogue import CARRIERS
from services.shipping_api.errors import IllegalTransition, RecipientErased, ShipmentNotFound
from services.shipping_api.labels.model import Label, LabelAddress
from services.shipping_api.labels.sender import SenderDirectory
from services.shipping_api.models import Parcel, Shipment
from services.shipping_api.shipments import repository
from services.shipping_api.shipments.lifecycle import EventSource, Outboxes, change_status
from services.shipping_api.vocabulary import Carrier, ShipmentMode, ShipmentStatus


def _check_printable(shipment: Shipment) -> None:
    if shipment.status == ShipmentStatus.CANCELLED.value:
        raise IllegalTransition(f"shipment {shipment.id} is cancelled: no label")
    if shipment.recipient_erased_at is not None or shipment.recipient_name is None:
        raise RecipientErased(f"shipment {shipment.id} no longer has a recipient address")


def _labels_of(shipment: Shipment, parcels: Sequence[Parcel], sender: LabelAddress) -> list[Label]:
    recipient = LabelAddress(
        name=shipment.recipient_name or "",
        contact_person=shipment.recipient_contact_person,
        street=shipment.recipient_street or "",
        house_number=shipment.recipient_house_number or "",
        postcode=shipment.recipient_postcode or "",
        city=shipment.recipient_city or "",
        country=shipment.recipient_country or shipment.country_code,
    )
    return [
        Label(
            tracking_code=shipment.tracking_code,
            carrier=CARRIERS[Carrier(shipment.carrier)].display_name,
            service=shipment.service,
            sender=sender,
            recipient=recipient,
            sequence=parcel.sequence,
            count=shipment.parcel_count,
            weight_grams=parcel.weight_grams,
            reference=shipment.reference,
            is_sandbox=shipment.mode == ShipmentMode.TEST.value,
        )
        for parcel in parcels
    ]


async def print_labels(
    session: AsyncSession,
    shipment_ids: Sequence[uuid.UUID],
    account_id: uuid.UUID,
    *,
    mode: ShipmentMode | None = None,
    senders: SenderDirectory,
    now: datetime,
    outboxes: Outboxes,
) -> list[Label]:
    """The labels of these shipments, in the order asked; first prints move them on.
    ``mode``: the caller's key's (0205: another mode's shipments do not exist for it)."""
    unique_ids = list(dict.fromkeys(shipment_ids))
    # Locked until the transaction ends: two prints at once would otherwise both see
    # ``created`` and record (and announce) ``label_printed`` twice.
    found = await repository.get_many_for_account(
        session, unique_ids, account_id, mode, for_update=True
    )
    shipments = {s.id: s for s in found}
    missing = [str(i) for i in unique_ids if i not in shipments]
    if missing:
        if len(unique_ids) == 1:
            raise ShipmentNotFound()
        raise NotFound("no shipment with these ids: " + ", ".join(missing))
    for shipment in shipments.values():
        _check_printable(shipment)
    # Fetched before any change: when identity is down nothing is marked printed.
    sender = LabelAddress.of_sender(await senders.sender(account_id))
    parcels = await repository.parcels_of(session, unique_ids)
    labels: list[Label] = []
    for shipment_id in unique_ids:
        shipment = shipments[shipment_id]
        labels += _labels_of(shipment, parcels.get(shipment_id, []), sender)
        if shipment.status == ShipmentStatus.CREATED.value:
            await change_status(
                session,
                shipment,
                ShipmentStatus.LABEL_PRINTED,
                now=now,
                outboxes=outboxes,
                source=EventSource.API,
            )
    return labels
