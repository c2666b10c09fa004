"""How receivers verify a delivery: HMAC-SHA256 over ``<timestamp>.<body>`` with the endpoint's
secret, in ``Parcelpro-Signature: t=<unix seconds>,v1=<hex>``. The timestamp is signed too, so a
receiver can refuse old replays (we suggest a 5-minute tolerance)."""

from __future__ import annotations

import hashlib
import hmac

SIGNATURE_HEADER = "Parcelpro-Signature"
EVENT_HEADER = "Parcelpro-Event"
DELIVERY_HEADER = "Parcelpro-Delivery"


def signature(secret: str, timestamp: int, body: bytes) -> str:
    signed = f"{timestamp}.".encode() + body
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify(secret: str, header: str, body: bytes) -> bool:
    """What a receiver does (used by our tests and documentation)."""
    parts = dict(item.split("=", 1) for item in header.split(",") if "=" in item)
    try:
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    return hmac.compare_digest(signature(secret, timestamp, body), header)
