"""Consents: given with the text version, withdrawn as easily, every change in the history;
other services read the effective consent through the internal route."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from libs.common.auth import Role, ServiceScope
from services.privacy_api.consents import service as consents
from services.privacy_api.consents.schemas import ConsentDecision
from services.privacy_api.models import Consent, ConsentEvent, ConsentPurpose, ConsentSource
from services.privacy_api.settings import PrivacySettings
from services.privacy_api.subjects import repository as subjects
from services.privacy_api.subjects.repository import SubjectKeys
from tests.support.privacy_harness import Privacy, isolated_databases
from tests.support.tokens import bearer

V = "2018-05-24"


async def test_consents_round_trip_with_history(privacy: Privacy) -> None:
    account = privacy.downstreams.identity.add_account(email="shop@example.nl")
    headers = privacy.user(account)
    initial = (await privacy.client.get("/v1/privacy/consents", headers=headers)).json()
    assert {c["purpose"]: c["granted"] for c in initial["consents"]} == {
        "profiling": False,
        "personalised_ads": False,
        "analytics_cookies": False,
    }
    assert initial["consents"][0]["current_text"]["version"] == V

    given = await privacy.client.put(
        "/v1/privacy/consents",
        json={"profiling": {"granted": True, "text_version": V}, "source": "cookie_banner"},
        headers=headers,
    )
    assert given.status_code == 200
    profiling = next(c for c in given.json()["consents"] if c["purpose"] == "profiling")
    assert profiling == {
        "purpose": "profiling",
        "granted": True,
        "text_version": V,
        "source": "cookie_banner",
        "changed_at": "2026-11-25T09:00:00Z",
        "current_text": profiling["current_text"],
    }

    privacy.clock.advance(timedelta(days=1))
    withdrawn = await privacy.client.put(
        "/v1/privacy/consents",
        json={"profiling": {"granted": False}, "source": "account_settings"},
        headers=headers,
    )
    assert withdrawn.status_code == 200
    again = (await privacy.client.get("/v1/privacy/consents", headers=headers)).json()
    profiling = next(c for c in again["consents"] if c["purpose"] == "profiling")
    assert profiling["granted"] is False
    assert profiling["changed_at"] == "2026-11-26T09:00:00Z"

    history = (await privacy.client.get("/v1/privacy/consents/history", headers=headers)).json()
    assert [
        (e["purpose"], e["granted"], e["text_version"], e["source"]) for e in history["data"]
    ] == [
        ("profiling", False, None, "account_settings"),
        ("profiling", True, V, "cookie_banner"),
    ]


async def test_repeating_the_same_decision_records_nothing_new(privacy: Privacy) -> None:
    account = privacy.downstreams.identity.add_account(email="shop@example.nl")
    headers = privacy.user(account)
    body = {"analytics_cookies": {"granted": True, "text_version": V}, "source": "cookie_banner"}
    for _ in range(3):
        assert (
            await privacy.client.put("/v1/privacy/consents", json=body, headers=headers)
        ).status_code == 200
    history = (await privacy.client.get("/v1/privacy/consents/history", headers=headers)).json()
    assert len(history["data"]) == 1


async def test_giving_consent_needs_a_known_text_version(privacy: Privacy) -> None:
    account = privacy.downstreams.identity.add_account(email="shop@example.nl")
    headers = privacy.user(account)
    cases = [
        ({"profiling": {"granted": True}, "source": "account_settings"}, "profiling.text_version"),
        (
            {
                "profiling": {"granted": True, "text_version": "1999-01-01"},
                "source": "account_settings",
            },
            "profiling.text_version",
        ),
        ({"source": "account_settings"}, "body"),
        ({"profiling": {"granted": False}, "source": "objection_request"}, "source"),
        ({"profiling": {"granted": False}, "source": "account_settings", "x": 1}, "x"),
        ({"profiling": {"granted": False}}, "source"),
    ]
    for body, field in cases:
        response = await privacy.client.put("/v1/privacy/consents", json=body, headers=headers)
        assert response.status_code == 422, body
        assert field in [e["field"] for e in response.json()["errors"]], response.json()


async def test_consents_are_for_account_holders_only(privacy: Privacy) -> None:
    account = privacy.downstreams.identity.add_account(email="shop@example.nl")
    for headers, expected in (
        ({}, 401),
        (bearer(privacy.issuer.staff(Role.PRIVACY_OFFICER)), 403),
        (bearer(privacy.issuer.api_keys.issue(account)), 403),
    ):
        assert (
            await privacy.client.get("/v1/privacy/consents", headers=headers)
        ).status_code == expected


async def test_internal_lookup_applies_restriction_and_objection(privacy: Privacy) -> None:
    account = privacy.downstreams.identity.add_account(email="shop@example.nl")
    await privacy.client.put(
        "/v1/privacy/consents",
        json={
            "profiling": {"granted": True, "text_version": V},
            "analytics_cookies": {"granted": True, "text_version": V},
            "source": "account_settings",
        },
        headers=privacy.user(account),
    )
    service = bearer(privacy.issuer.service("shipping_api", [ServiceScope.CONSENTS_READ]))
    url = "/internal/v1/consents"
    before = await privacy.client.get(url, params={"account_id": str(account)}, headers=service)
    assert before.status_code == 200
    assert before.json() == {
        "profiling": True,
        "personalised_ads": False,
        "analytics_cookies": True,
        "objection": False,
    }
    assert "max-age" in before.headers["cache-control"]
    await privacy.request_as_account(account, type="restriction")
    await privacy.drain()
    after = await privacy.client.get(url, params={"account_id": str(account)}, headers=service)
    assert after.json() == {
        "profiling": False,
        "personalised_ads": False,
        "analytics_cookies": False,
        "objection": False,
    }


async def test_internal_lookup_by_email_sees_a_recipients_objection(privacy: Privacy) -> None:
    await privacy.request_by_email("piet@example.nl", type="objection", grounds="No ads.")
    await privacy.drain()
    service = bearer(privacy.issuer.service("shipping_api", [ServiceScope.CONSENTS_READ]))
    answer = await privacy.client.get(
        "/internal/v1/consents", params={"email": "PIET@example.nl"}, headers=service
    )
    assert answer.json()["objection"] is True
    assert answer.json()["profiling"] is False


async def test_internal_lookup_needs_a_service_token_with_the_scope(privacy: Privacy) -> None:
    account = privacy.downstreams.identity.add_account(email="shop@example.nl")
    params = {"account_id": str(account)}
    url = "/internal/v1/consents"
    assert (
        await privacy.client.get(url, params=params, headers=privacy.user(account))
    ).status_code == 401
    no_scope = bearer(privacy.issuer.service("shipping_api", [ServiceScope.SUBJECTS]))
    assert (await privacy.client.get(url, params=params, headers=no_scope)).status_code == 403
    both = {"account_id": str(account), "email": "x@example.nl"}
    service = bearer(privacy.issuer.service("shipping_api", [ServiceScope.CONSENTS_READ]))
    assert (await privacy.client.get(url, params=both, headers=service)).status_code == 422


async def test_two_first_decisions_at_once_both_count(
    privacy_settings: PrivacySettings, tmp_path: Path
) -> None:
    """Two tabs answer the consent question for the first time at the same moment: the later
    one waits for the earlier one's row and then decides against it, instead of failing."""
    keys = SubjectKeys(account_id=uuid.uuid4(), email_index=None)
    now = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
    give = {ConsentPurpose.PROFILING: ConsentDecision(granted=True, text_version=V)}
    withdraw = {ConsentPurpose.PROFILING: ConsentDecision(granted=False)}
    async with isolated_databases(privacy_settings, tmp_path) as databases:
        first, second = databases(), databases()
        async with first.session() as earlier:
            assert await consents.update(
                earlier, keys, give, source=ConsentSource.COOKIE_BANNER, now=now
            ) == [ConsentPurpose.PROFILING]

            async def later_decision() -> list[ConsentPurpose]:
                async with second.session() as later:
                    changed = await consents.update(
                        later, keys, withdraw, source=ConsentSource.ACCOUNT_SETTINGS, now=now
                    )
                    await later.commit()
                    return changed

            later = asyncio.create_task(later_decision())
            await asyncio.sleep(0.3)  # the later one now waits on the earlier one's row
            await earlier.commit()
        assert await later == [ConsentPurpose.PROFILING]

        async with first.session() as session:
            stored = await session.scalars(
                select(Consent).where(Consent.account_id == keys.account_id)
            )
            events = await session.scalars(
                select(ConsentEvent.granted)
                .where(ConsentEvent.account_id == keys.account_id)
                .order_by(ConsentEvent.id)
            )
            assert [(c.granted, c.source) for c in stored] == [(False, "account_settings")]
            assert list(events) == [True, False]


async def test_a_decision_made_while_an_erasure_removes_the_consents_is_stored(
    privacy_settings: PrivacySettings, tmp_path: Path
) -> None:
    """The account changes a consent while its erasure deletes the consents it had: the change
    waits for the erasure and is then stored as a first decision, instead of failing on the row
    that went away."""
    keys = SubjectKeys(account_id=uuid.uuid4(), email_index=None)
    now = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
    give = {ConsentPurpose.PROFILING: ConsentDecision(granted=True, text_version=V)}
    withdraw = {ConsentPurpose.PROFILING: ConsentDecision(granted=False)}
    async with isolated_databases(privacy_settings, tmp_path) as databases:
        first, second = databases(), databases()
        async with first.session() as session:
            await consents.update(session, keys, give, source=ConsentSource.COOKIE_BANNER, now=now)
            await session.commit()
        async with first.session() as erasing:
            assert (await subjects.erase(erasing, keys))["consent"] == 1

            async def decision() -> list[ConsentPurpose]:
                async with second.session() as deciding:
                    changed = await consents.update(
                        deciding, keys, withdraw, source=ConsentSource.ACCOUNT_SETTINGS, now=now
                    )
                    await deciding.commit()
                    return changed

            deciding = asyncio.create_task(decision())
            await asyncio.sleep(0.3)  # the decision now waits on the erasure
            await erasing.commit()
        assert await deciding == [ConsentPurpose.PROFILING]

        async with first.session() as session:
            stored = await session.scalars(
                select(Consent).where(Consent.account_id == keys.account_id)
            )
            assert [(c.granted, c.source) for c in stored] == [(False, "account_settings")]
