"""How receivers verify a delivery: HMAC-SHA256 over ``<timestamp>.<body>`` with the endpoint's
secret, in ``Parcelpro-Signature: t=<unix seconds>,v1=<hex>``. The timestamp is signed too, so a
receiver can refuse old replays (we suggest a 5-minute tolerance). For a while after the secret
was rotated, the header carries a second ``v1``, made with the secret before: a receiver accepts
a delivery when any ``v1`` matches the secret it holds."""

from __future__ import annotations

import hashlib
import hmac

SIGNATURE_HEADER = "Parcelpro-Signature"
EVENT_HEADER = "Parcelpro-Event"
DELIVERY_HEADER = "Parcelpro-Delivery"


def _digest(secret: str, timestamp: int, body: bytes) -> str:
    signed = f"{timestamp}.".encode() + body
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def signature(secret: str, timestamp: int, body: bytes, *also: str) -> str:
    """The header's value: a ``v1`` for ``secret`` and then one for each secret of ``also``."""
    return ",".join(
        [f"t={timestamp}", *(f"v1={_digest(key, timestamp, body)}" for key in (secret, *also))]
    )


def verify(secret: str, header: str, body: bytes) -> bool:
    """What a receiver does (used by our tests and documentation)."""
    timestamp: int | None = None
    signatures = []
    for item in header.split(","):
        name, _, value = item.strip().partition("=")
        if name == "t" and value.isdigit():
            timestamp = int(value)
        elif name == "v1":
            signatures.append(value)
    if timestamp is None:
        return False
    expected = _digest(secret, timestamp, body).encode()
    return any(hmac.compare_digest(expected, candidate.encode()) for candidate in signatures)
