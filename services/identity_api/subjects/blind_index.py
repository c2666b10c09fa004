"""Keyed blind index of e-mail addresses that staff searched for (decision 0108).

The access log records a search by e-mail with this index instead of the address: a search
that finds no account names someone we may hold nothing else about, yet a privacy request for
that address still finds the entry. HMAC-SHA256 under identity's hash key, so the index is
useless to whoever reads the table without the settings.
"""

from __future__ import annotations

from libs.common.crypto import keyed_hash
from libs.common.validation import normalise_email

SEARCH_PREFIX = "email_index="


def email_index(hash_key: bytes, email: str) -> str:
    """Addresses match whatever their case, as the staff search does."""
    try:
        value = normalise_email(email)
    except ValueError:
        value = email.strip()
    return keyed_hash(hash_key, f"email:{value.lower()}")


def email_search(hash_key: bytes, email: str) -> str:
    """How the access log's ``query`` records a search for ``email``."""
    return SEARCH_PREFIX + email_index(hash_key, email)
