"""Valid shipment bodies in one line, for shipping_api tests."""

from __future__ import annotations

from typing import Any


def recipient(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "Jan Jansen",
        "street": "Griede",
        "house_number": "22",
        "postcode": "3191ee",
        "city": "Hoogvliet Rotterdam",
        "country": "NL",
        "email": "jan.jansen@example.nl",
        "phone": "06 12345678",
    }
    body.update(changes)
    return body


def parcel(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"weight_grams": 1200, "length_cm": 40, "width_cm": 30, "height_cm": 20}
    body.update(changes)
    return body


def shipment_body(
    *, parcels: int = 1, recipient_changes: dict[str, Any] | None = None, **changes: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "reference": "ORDER-1001",
        "carrier": "postnl",
        "service": "standard",
        "recipient": recipient(**(recipient_changes or {})),
        "parcels": [parcel() for _ in range(parcels)],
    }
    body.update(changes)
    return body
