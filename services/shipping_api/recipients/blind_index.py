"""Keyed blind index of recipients' e-mail addresses and phone numbers (decision 0004).

A privacy request names a person by e-mail or phone; the shipments addressed to them are found
through an HMAC-SHA256 of the normalised value under a service key, so lookups never scan
plaintext and the index is useless to whoever lacks the key.
"""

from __future__ import annotations

import hashlib
import hmac

from libs.common.validation import normalise_email, normalise_phone


class BlindIndex:
    def __init__(self, key: str) -> None:
        self._key = hashlib.sha256(b"parcelpro-shipping-blind-index:" + key.encode()).digest()

    def _digest(self, kind: str, value: str) -> str:
        return hmac.new(self._key, f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()

    def email(self, value: str | None, *, normalised: bool = False) -> str | None:
        """Addresses match whatever their case: mailboxes are case-insensitive in practice.

        ``normalised``: ``value`` passed the ``Email`` validation already (a request body's),
        which is what normalising here would do again."""
        if not value:
            return None
        return self._digest("email", (value if normalised else normalise_email(value)).lower())

    def phone(self, value: str | None, *, normalised: bool = False) -> str | None:
        """``normalised``: ``value`` passed the ``Phone`` validation already (E.164)."""
        if not value:
            return None
        return self._digest("phone", value if normalised else normalise_phone(value))
