"""Tracking codes: random (so not enumerable), with a check character (so a mistyped code is
caught before a database look-up).

``PP`` + 12 random Crockford base-32 characters (60 bits) + 1 Luhn mod 32 check character.
Crockford's alphabet has no I, L, O or U, so a code read aloud or typed on a phone survives.
"""

from __future__ import annotations

import secrets

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
PREFIX = "PP"
RANDOM_LENGTH = 12
LENGTH = len(PREFIX) + RANDOM_LENGTH + 1
_VALUE = {char: index for index, char in enumerate(ALPHABET)}
_CONFUSABLE = str.maketrans({"O": "0", "I": "1", "L": "1"})


def _check_character(payload: str) -> str:
    """Luhn mod N over the alphabet (detects every single-character error and most swaps)."""
    n = len(ALPHABET)
    factor = 2
    total = 0
    for char in reversed(payload):
        addend = factor * _VALUE[char]
        factor = 1 if factor == 2 else 2
        total += addend // n + addend % n
    return ALPHABET[(n - total % n) % n]


def new_tracking_code() -> str:
    # 60 random bits read once, five per character (32 = 2**5: every character equally likely).
    bits = secrets.randbits(5 * RANDOM_LENGTH)
    body = "".join(ALPHABET[(bits >> (5 * i)) & 31] for i in range(RANDOM_LENGTH))
    return PREFIX + body + _check_character(body)


def normalise_tracking_code(value: str) -> str | None:
    """The canonical code, or ``None`` when it cannot be one of ours (wrong shape or check)."""
    cleaned = value.strip().upper().replace(" ", "").replace("-", "")
    if len(cleaned) != LENGTH or not cleaned.startswith(PREFIX):
        return None
    body = cleaned[len(PREFIX) :].translate(_CONFUSABLE)
    if any(char not in _VALUE for char in body):
        return None
    if _check_character(body[:-1]) != body[-1]:
        return None
    return PREFIX + body
