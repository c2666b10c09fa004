"""The audit log: every staff action is recorded, and nothing can change or remove an entry."""

from __future__ import annotations

import pytest
from sqlalchemy import delete, text, update
from sqlalchemy.exc import DBAPIError

from services.privacy_api.models import AuditLog
from tests.support.privacy_harness import Privacy


async def test_staff_actions_and_reads_are_in_the_audit_log(privacy: Privacy) -> None:
    officer = privacy.officer()
    account = privacy.downstreams.identity.add_account(email="shop@example.nl")
    created = await privacy.request_as_account(account, type="access")
    await privacy.client.get(f"/v1/privacy/requests/{created['id']}", headers=officer)
    await privacy.client.get("/v1/privacy/requests", headers=officer)
    await privacy.client.post(
        f"/v1/privacy/requests/{created['id']}/extend",
        json={"months": 1, "reason": "Complex"},
        headers=officer,
    )
    entries = (await privacy.client.get("/v1/privacy/audit-log", headers=officer)).json()["data"]
    actions = [e["action"] for e in entries]
    assert actions[:3] == [
        "privacy_request.extended",
        "privacy_request.listed",
        "privacy_request.viewed",
    ]
    assert entries[0]["actor_kind"] == "staff"
    assert entries[0]["actor_roles"] == ["privacy_officer"]
    assert entries[0]["details"]["reason"] == "Complex"
    assert entries[0]["http_request_id"]
    # The account holder's own actions are not staff actions.
    assert all(e["actor_kind"] == "staff" for e in entries)


@pytest.mark.parametrize("statement", ["update", "delete"])
async def test_the_database_refuses_to_change_or_remove_audit_entries(
    privacy: Privacy, statement: str
) -> None:
    officer = privacy.officer()
    await privacy.client.get("/v1/privacy/requests", headers=officer)
    async with privacy.app.state.database.session() as session:
        change = (
            update(AuditLog).values(action="nothing happened")
            if statement == "update"
            else delete(AuditLog)
        )
        with pytest.raises(DBAPIError, match="append-only"):
            async with session.begin_nested():
                await session.execute(change)
        count = await session.scalar(text("SELECT count(*) FROM audit_log"))
    assert count == 1
