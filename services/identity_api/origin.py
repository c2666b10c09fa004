"""Where a request came from: recorded with security events, used to throttle."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Origin:
    ip: str | None
    user_agent: str | None


NO_ORIGIN = Origin(ip=None, user_agent=None)
