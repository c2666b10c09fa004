"""A shipment as ``GET /v1/shipments/{id}`` sends it, rendered straight to JSON bytes.

The same document as :class:`~services.shipping_api.shipments.schemas.ShipmentRead` (which
documents it in OpenAPI), built from the plain rows of ``repository.DOCUMENT_OF_ACCOUNT`` (or
``DOCUMENT_OF_ACCOUNT_IN_MODE``), whether they were read through the session or directly
through asyncpg (``shipments.fastpath``). Building and validating the Pydantic model per read
cost more than the read itself; the values come from the database's own constraints and types.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson

RECIPIENT_FIELDS = (
    "name",
    "contact_person",
    "street",
    "house_number",
    "postcode",
    "city",
    "country",
    "email",
    "phone",
)
PARCEL_DOCUMENT_FIELDS = ("sequence", "weight_grams", "length_cm", "width_cm", "height_cm")
_RECIPIENT_COLUMNS = tuple((field, "recipient_" + field) for field in RECIPIENT_FIELDS)
# Pydantic writes UTC datetimes with "Z"; so does this.
_OPTIONS = orjson.OPT_UTC_Z


def shipment_document(rows: Sequence[Mapping[Any, Any]]) -> bytes:
    """``rows``: one per parcel, in parcel order (at least one)."""
    first = rows[0]
    recipient = None
    if first["recipient_erased_at"] is None:
        recipient = {field: first[column] for field, column in _RECIPIENT_COLUMNS}
    document = {
        "id": str(first["id"]),
        "reference": first["reference"],
        "carrier": first["carrier"],
        "service": first["service"],
        "status": first["status"],
        "tracking_code": first["tracking_code"],
        "mode": first["mode"],
        "recipient": recipient,
        "parcel_count": first["parcel_count"],
        "parcels": [{field: row[field] for field in PARCEL_DOCUMENT_FIELDS} for row in rows],
        "price": {"amount_cents": first["price_cents"], "currency": first["currency"]},
        "created_at": first["created_at"],
        "updated_at": first["updated_at"],
        "status_changed_at": first["status_changed_at"],
    }
    return orjson.dumps(document, option=_OPTIONS)
