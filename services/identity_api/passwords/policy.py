"""The password policy: 12 to 128 characters and not a commonly used password.

The common-password list is zxcvbn's (30 000 passwords from leaked corpora, shipped with the
package, so no network lookup), extended with Dutch and platform words. A password is refused
when it, or its core without the digits and symbols padded around it, is on the list: the
minimum length otherwise pushes people to ``Password1234!``.
"""

from __future__ import annotations

import re
from functools import lru_cache

from zxcvbn.frequency_lists import FREQUENCY_LISTS

MIN_LENGTH = 12
MAX_LENGTH = 128

_LOCAL_WORDS = (
    "wachtwoord",
    "welkom",
    "welkom01",
    "geheim",
    "parcelpro",
    "parcel",
    "pakket",
    "verzenden",
    "zomer",
    "winter",
    "voorjaar",
    "najaar",
    "feyenoord",
    "ajax",
    "amsterdam",
    "rotterdam",
    "nederland",
    "qwertyuiop",
    "azertyuiop",
)
_PADDING = re.compile(r"^[\d\W_]*(.*?)[\d\W_]*$", re.DOTALL)


@lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    return frozenset(FREQUENCY_LISTS["passwords"]) | frozenset(_LOCAL_WORDS)


def password_problem(password: str, *, context: tuple[str, ...] = ()) -> str | None:
    """Why ``password`` is refused, or ``None`` when it is acceptable."""
    if len(password) < MIN_LENGTH:
        return f"use at least {MIN_LENGTH} characters"
    if len(password) > MAX_LENGTH:
        return f"use at most {MAX_LENGTH} characters"
    lowered = password.lower()
    if len(set(lowered)) < 4:
        return "use more different characters"
    words = common_passwords()
    match = _PADDING.match(lowered)
    core = match.group(1) if match else lowered
    if lowered in words or core in words or _repeats_common(core, words):
        return "this password is too common; choose one that others are unlikely to use"
    for value in context:
        hint = value.lower().strip()
        if len(hint) >= 4 and (hint in lowered or lowered in hint):
            return "do not use your e-mail address or name in your password"
    return None


def _repeats_common(core: str, words: frozenset[str]) -> bool:
    """``passwordpassword``, ``qwertyqwerty``: a common word repeated."""
    for size in range(3, len(core) // 2 + 1):
        if len(core) % size == 0 and core[:size] * (len(core) // size) == core:
            return core[:size] in words
    return False
