"""``Idempotency-Key`` on privacy's creates (decision 0202): whose key a caller's retry is."""

from __future__ import annotations

from libs.common.auth import Principal, PrincipalKind
from libs.common.idempotency import staff_scope
from services.privacy_api.models import account_scope


def scope_of(principal: Principal) -> str:
    """An account holder's keys are their account's (their erasure drops them); a staff
    member's are their own."""
    if principal.kind is PrincipalKind.STAFF:
        return staff_scope(principal.subject)
    assert principal.account_id is not None  # noqa: S101 - only staff act without an account
    return account_scope(principal.account_id)
