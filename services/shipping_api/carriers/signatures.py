"""Carriers sign each pushed event: ``X-Carrier-Signature: sha256=<hex HMAC-SHA256 of the raw
body with the carrier's secret>``."""

from __future__ import annotations

import hashlib
import hmac

SIGNATURE_HEADER = "X-Carrier-Signature"


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def is_valid(secret: str, body: bytes, signature: str | None) -> bool:
    if not signature:
        return False
    return hmac.compare_digest(sign(secret, body), signature.strip())
