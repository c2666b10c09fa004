"""OWASP API6 (unrestricted access to sensitive business flows): the flows an attacker would
automate — guessing passwords, mailed links and codes, flooding mailboxes with resets and
privacy requests, sweeping track & trace — are rate-limited (429 with ``Retry-After``), and
tracking codes cannot be enumerated."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update

from libs.common.clock import ManualClock
from services.identity_api.models import Account, OutboxMail
from services.identity_api.settings import IdentitySettings
from services.privacy_api.settings import PrivacySettings
from services.shipping_api.settings import ShippingSettings
from tests.security.conftest import GENEROUS, NOW, shipping_settings_for, start_shipping_world
from tests.support.db import rolled_back
from tests.support.identity_app import PASSWORD, Identity, fast_settings, identity_app
from tests.support.privacy_doubles import Downstreams
from tests.support.privacy_harness import (
    Privacy,
    privacy_on_rolled_back,
    privacy_test_settings,
)
from tests.support.smtp import Inbox
from tests.support.tokens import TokenIssuer

OTHER_ADDRESS = ("198.51.100.99", 40000)


def assert_throttled(response: httpx.Response) -> None:
    assert response.status_code == 429, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert int(response.headers["retry-after"]) >= 1


@pytest.fixture
async def guarded_identity(identity_settings: IdentitySettings) -> AsyncIterator[Identity]:
    settings = fast_settings(
        identity_settings,
        login_failures_per_account="3/15 minutes",
        login_failures_per_ip="6/15 minutes",
        mail_requests_per_address="2/hour",
        rate_limit_per_account=GENEROUS,
        rate_limit_per_ip=GENEROUS,
        registrations_per_ip=GENEROUS,
    )
    async with identity_app(settings) as identity:
        yield identity


async def login(identity: Identity, email: str, password: str) -> httpx.Response:
    return await identity.token_response(grant_type="password", username=email, password=password)


async def test_failed_logins_throttle_the_account_even_for_the_right_password(
    guarded_identity: Identity,
) -> None:
    account = await guarded_identity.register()
    for attempt in range(3):
        wrong = await login(guarded_identity, account["email"], f"wrong-{attempt}-password")
        assert wrong.status_code == 400

    assert_throttled(await login(guarded_identity, account["email"], PASSWORD))


async def test_failed_logins_from_one_address_throttle_it_for_every_account(
    guarded_identity: Identity,
) -> None:
    accounts = [await guarded_identity.register() for _ in range(3)]
    for account in accounts:
        for attempt in range(2):
            await login(guarded_identity, account["email"], f"wrong-{attempt}-password")
    fresh = await guarded_identity.register()

    assert_throttled(await login(guarded_identity, fresh["email"], PASSWORD))
    elsewhere = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=guarded_identity.app, client=OTHER_ADDRESS),
        base_url="http://testserver",
    )
    async with elsewhere:
        form = {"grant_type": "password", "username": fresh["email"], "password": PASSWORD}
        assert (await elsewhere.post("/v1/auth/token", data=form)).status_code == 200


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/auth/verify-email", {}),
        ("/v1/auth/password-reset/confirm", {"new_password": "kaas-fiets-regen-43"}),
    ],
)
async def test_guessing_mailed_links_is_throttled_per_address(
    guarded_identity: Identity, path: str, body: dict[str, Any]
) -> None:
    for attempt in range(6):
        guess = await guarded_identity.client.post(path, json={**body, "token": f"guess-{attempt}"})
        assert guess.status_code == 422

    assert_throttled(await guarded_identity.client.post(path, json={**body, "token": "one-more"}))


async def test_password_reset_neither_floods_a_mailbox_nor_tells_it_is_limited(
    guarded_identity: Identity,
) -> None:
    account = await guarded_identity.register()
    async with guarded_identity.database.session() as session:
        # Only a confirmed address gets reset links.
        await session.execute(
            update(Account).where(Account.email == account["email"]).values(email_verified_at=NOW)
        )
        await session.commit()
    answers = [
        await guarded_identity.client.post(
            "/v1/auth/password-reset", json={"email": account["email"]}
        )
        for _ in range(4)
    ]
    async with guarded_identity.database.session() as session:
        reset_mails = await session.scalar(
            select(func.count())
            .select_from(OutboxMail)
            .where(OutboxMail.subject.ilike("%password%"))
        )

    assert [a.status_code for a in answers] == [202] * 4
    assert len({a.text.split('"request_id"')[0] for a in answers}) == 1
    assert reset_mails == 2


async def test_password_reset_requests_from_one_address_are_throttled(
    guarded_identity: Identity,
) -> None:
    for number in range(6):
        response = await guarded_identity.client.post(
            "/v1/auth/password-reset", json={"email": f"nobody{number}@example.nl"}
        )
        assert response.status_code == 202

    assert_throttled(
        await guarded_identity.client.post(
            "/v1/auth/password-reset", json={"email": "nobody9@example.nl"}
        )
    )


async def test_confirmation_mails_are_resent_at_most_the_allowed_number_of_times(
    guarded_identity: Identity,
) -> None:
    _, login_headers = await guarded_identity.user()
    resend = "/v1/auth/verify-email/resend"
    for _ in range(2):
        assert (
            await guarded_identity.client.post(resend, headers=login_headers)
        ).status_code == 202

    assert_throttled(await guarded_identity.client.post(resend, headers=login_headers))


# ----------------------------------------------------------------------------------------------
# Privacy requests and their codes
# ----------------------------------------------------------------------------------------------


@pytest.fixture
async def guarded_privacy(
    privacy_settings: PrivacySettings,
    tmp_path: Path,
    issuer: TokenIssuer,
    smtp: tuple[str, Inbox],
) -> AsyncIterator[Privacy]:
    settings = privacy_test_settings(
        privacy_settings,
        tmp_path,
        request_create_limit="4/hour",
        request_create_per_email_limit="2/day",
        verify_limit="8/hour",
        rate_limit_per_account=GENEROUS,
        rate_limit_per_ip=GENEROUS,
    )
    async with privacy_on_rolled_back(
        settings,
        issuer=issuer,
        downstreams=Downstreams(issuer),
        clock=ManualClock(NOW),
        smtp=smtp,
    ) as privacy:
        yield privacy


async def make_request(privacy: Privacy, email: str) -> httpx.Response:
    return await privacy.client.post(
        "/v1/privacy/requests", json={"type": "access", "email": email}
    )


async def test_privacy_requests_without_an_account_are_limited_per_address_and_per_mailbox(
    guarded_privacy: Privacy,
) -> None:
    first = [await make_request(guarded_privacy, "jan@example.nl") for _ in range(2)]
    same_mailbox = await make_request(guarded_privacy, "jan@example.nl")
    other_mailbox = await make_request(guarded_privacy, "piet@example.nl")
    over_address = await make_request(guarded_privacy, "kees@example.nl")

    assert [r.status_code for r in first] == [201, 201]
    assert_throttled(same_mailbox)
    assert other_mailbox.status_code == 201
    assert_throttled(over_address)
    assert len(guarded_privacy.inbox.to("jan@example.nl")) <= 2


async def test_a_verification_code_allows_five_tries_and_the_address_is_throttled(
    guarded_privacy: Privacy,
) -> None:
    created = await make_request(guarded_privacy, "jan@example.nl")
    request_id = created.json()["id"]
    token = {"X-Privacy-Request-Token": created.json()["access_token"]}
    verify = f"/v1/privacy/requests/{request_id}/verify"
    tries = [
        await guarded_privacy.client.post(verify, json={"code": "000000"}, headers=token)
        for _ in range(6)
    ]
    # The code itself is spent after five wrong tries; the address after eight attempts.
    assert [t.status_code for t in tries] == [422] * 5 + [409]
    for _ in range(2):
        await guarded_privacy.client.post(verify, json={"code": "000000"}, headers=token)
    assert_throttled(
        await guarded_privacy.client.post(verify, json={"code": "000000"}, headers=token)
    )


# ----------------------------------------------------------------------------------------------
# Public tracking
# ----------------------------------------------------------------------------------------------


@pytest.fixture
async def tracking(
    shipping_settings: ShippingSettings, issuer: TokenIssuer
) -> AsyncIterator[tuple[httpx.AsyncClient, list[dict[str, Any]], Any]]:
    settings = shipping_settings_for(
        shipping_settings, tracking_rate_limit="12/minute", tracking_postcode_rate_limit="3/hour"
    )
    async with (
        rolled_back(settings) as database,
        start_shipping_world(settings, issuer, database) as world,
    ):
        _, key = world.account()
        shipments = [await world.create_shipment(key, reference=f"R-{n}") for n in range(8)]
        yield world.running.client, shipments, world.running.app


async def test_public_tracking_is_limited_per_client_address(
    tracking: tuple[httpx.AsyncClient, list[dict[str, Any]], Any],
) -> None:
    client, shipments, app = tracking
    code = shipments[0]["tracking_code"]
    answers = [await client.get(f"/v1/tracking/{code}") for _ in range(12)]
    assert {a.status_code for a in answers} == {200}
    assert_throttled(await client.get(f"/v1/tracking/{code}"))
    elsewhere = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, client=OTHER_ADDRESS), base_url="http://testserver"
    )
    async with elsewhere:
        assert (await elsewhere.get(f"/v1/tracking/{code}")).status_code == 200


async def test_postcode_guesses_are_limited_per_tracking_code_from_any_address(
    tracking: tuple[httpx.AsyncClient, list[dict[str, Any]], Any],
) -> None:
    client, shipments, app = tracking
    code = shipments[0]["tracking_code"]
    for guess in ("1000 AA", "1000 AB", "1000 AC"):
        answer = await client.get(f"/v1/tracking/{code}", params={"postcode": guess})
        assert answer.status_code == 200
        assert "events" not in answer.json() or not answer.json()["events"]
    elsewhere = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, client=OTHER_ADDRESS), base_url="http://testserver"
    )
    async with elsewhere:
        # Even the right postcode, from another address: the code's guesses are used up.
        assert_throttled(
            await elsewhere.get(f"/v1/tracking/{code}", params={"postcode": "3191 EE"})
        )


async def test_tracking_codes_cannot_be_enumerated(
    tracking: tuple[httpx.AsyncClient, list[dict[str, Any]], Any],
) -> None:
    client, shipments, _ = tracking
    codes = [s["tracking_code"] for s in shipments]
    # Random, not sequential: consecutive codes differ in most positions, in no order.
    for earlier, later in itertools.pairwise(codes):
        assert sum(a != b for a, b in zip(earlier, later, strict=True)) >= len(earlier) // 2
    assert sorted(codes) != codes or sorted(codes, reverse=True) != codes
    # A neighbour of a real code fails its check character: it is answered exactly like an
    # unknown code, so trying codes near known ones tells nothing.
    real = codes[0]
    neighbour = real[:-2] + ("X" if real[-2] != "X" else "Y") + real[-1]
    unknown = await client.get(f"/v1/tracking/{neighbour}")
    nonsense = await client.get(f"/v1/tracking/PP{uuid.uuid4().hex[:13].upper()}")
    for answer in (unknown, nonsense):
        assert answer.status_code == 404
    assert unknown.json()["detail"] == nonsense.json()["detail"]
    assert unknown.json()["type"] == nonsense.json()["type"]
