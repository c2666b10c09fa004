"""The OAuth2 token endpoint: password, refresh-token and client-credentials grants, logout."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import jwt

from libs.common.auth import ACCOUNT_SCOPES, API_AUDIENCE, INTERNAL_AUDIENCE
from libs.common.clock import ManualClock
from services.identity_api.settings import IdentitySettings
from tests.support.identity_app import PASSWORD, Identity, bearer, identity_app


def claims(token: str) -> dict[str, object]:
    return jwt.decode(token, options={"verify_signature": False})


async def test_password_grant_returns_oauth2_tokens(identity: Identity) -> None:
    account = await identity.register()
    response = await identity.token_response(
        grant_type="password", username=account["email"], password=PASSWORD
    )
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 900
    assert body["refresh_token"]
    header = jwt.get_unverified_header(body["access_token"])
    assert header["alg"] == "EdDSA"
    assert header["kid"]
    payload = claims(body["access_token"])
    assert payload["sub"] == account["account_id"]
    assert payload["kind"] == "user"
    assert payload["aud"] == API_AUDIENCE
    assert payload["iss"] == "parcelpro"
    assert set(str(payload["scope"]).split()) == ACCOUNT_SCOPES
    assert int(str(payload["exp"])) - int(str(payload["iat"])) == 900
    assert "roles" not in payload


async def test_login_ignores_the_case_of_the_email(identity: Identity) -> None:
    account = await identity.register(email="case@example.nl")
    tokens = await identity.login("CASE@Example.nl", PASSWORD)
    assert claims(tokens["access_token"])["sub"] == account["account_id"]


async def test_wrong_password_and_unknown_email_get_the_same_answer(identity: Identity) -> None:
    account = await identity.register()
    wrong = await identity.token_response(
        grant_type="password", username=account["email"], password="not-the-password-1"
    )
    unknown = await identity.token_response(
        grant_type="password", username="nobody@example.nl", password="not-the-password-1"
    )
    assert wrong.status_code == unknown.status_code == 400
    strip = {"instance", "request_id"}
    assert {k: v for k, v in wrong.json().items() if k not in strip} == {
        k: v for k, v in unknown.json().items() if k not in strip
    }
    assert wrong.json()["error"] == "invalid_grant"
    assert wrong.headers["content-type"] == "application/problem+json"


async def test_unknown_grant_type_is_refused(identity: Identity) -> None:
    response = await identity.token_response(grant_type="implicit")
    assert response.status_code == 400
    assert response.json()["error"] == "unsupported_grant_type"


async def test_password_grant_without_password_is_invalid_request(identity: Identity) -> None:
    response = await identity.token_response(grant_type="password", username="a@example.nl")
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


async def test_a_narrower_scope_can_be_asked_for(identity: Identity) -> None:
    account = await identity.register()
    tokens = await identity.login(account["email"], scope="shipments:read")
    assert claims(tokens["access_token"])["scope"] == "shipments:read"
    response = await identity.token_response(
        grant_type="password", username=account["email"], password=PASSWORD, scope="root"
    )
    assert response.json()["error"] == "invalid_scope"


async def test_refresh_token_rotates(identity: Identity) -> None:
    account = await identity.register()
    first = await identity.login(account["email"])
    response = await identity.token_response(
        grant_type="refresh_token", refresh_token=first["refresh_token"]
    )
    assert response.status_code == 200
    second = response.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert claims(second["access_token"])["sub"] == account["account_id"]
    me = await identity.client.get("/v1/accounts/me", headers=bearer(second["access_token"]))
    assert me.status_code == 200


async def test_refresh_keeps_the_narrower_scope_of_the_login(identity: Identity) -> None:
    account = await identity.register()
    tokens = await identity.login(account["email"], scope="shipments:read reports:read")
    for _ in range(2):
        response = await identity.token_response(
            grant_type="refresh_token", refresh_token=tokens["refresh_token"]
        )
        assert response.status_code == 200
        tokens = response.json()
        assert tokens["scope"] == "reports:read shipments:read"
        assert claims(tokens["access_token"])["scope"] == "reports:read shipments:read"


async def test_a_login_ends_after_its_absolute_lifetime_however_often_it_is_refreshed(
    identity: Identity,
) -> None:
    account = await identity.register()
    tokens = await identity.login(account["email"])
    max_days = identity.settings.refresh_family_max_days
    lived = 0
    while lived + 29 < max_days:
        identity.clock.advance(timedelta(days=29))
        lived += 29
        response = await identity.token_response(
            grant_type="refresh_token", refresh_token=tokens["refresh_token"]
        )
        assert response.status_code == 200, f"refused after {lived} days"
        tokens = response.json()
    identity.clock.advance(timedelta(days=max_days - lived))
    response = await identity.token_response(
        grant_type="refresh_token", refresh_token=tokens["refresh_token"]
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"
    await identity.login(account["email"])  # the password starts a new login


async def test_reusing_a_rotated_refresh_token_revokes_the_whole_login(
    identity: Identity,
) -> None:
    account = await identity.register()
    first = await identity.login(account["email"])
    second = (
        await identity.token_response(
            grant_type="refresh_token", refresh_token=first["refresh_token"]
        )
    ).json()
    reuse = await identity.token_response(
        grant_type="refresh_token", refresh_token=first["refresh_token"]
    )
    assert reuse.status_code == 400
    assert reuse.json()["error"] == "invalid_grant"
    # The thief's replay also ends the legitimate holder's refresh token of the same login.
    after = await identity.token_response(
        grant_type="refresh_token", refresh_token=second["refresh_token"]
    )
    assert after.status_code == 400
    events = await identity.client.get(
        "/v1/accounts/me/security-events", headers=bearer(second["access_token"])
    )
    assert "refresh_token_reused" in [event["type"] for event in events.json()["data"]]


async def test_reuse_revokes_only_that_login(identity: Identity) -> None:
    account = await identity.register()
    stolen = await identity.login(account["email"])
    other_device = await identity.login(account["email"])
    await identity.token_response(grant_type="refresh_token", refresh_token=stolen["refresh_token"])
    await identity.token_response(grant_type="refresh_token", refresh_token=stolen["refresh_token"])
    response = await identity.token_response(
        grant_type="refresh_token", refresh_token=other_device["refresh_token"]
    )
    assert response.status_code == 200


async def test_unknown_refresh_token_is_invalid_grant(identity: Identity) -> None:
    response = await identity.token_response(grant_type="refresh_token", refresh_token="nope")
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


async def test_logout_revokes_the_refresh_token(identity: Identity) -> None:
    account = await identity.register()
    tokens = await identity.login(account["email"])
    response = await identity.client.post(
        "/v1/auth/logout", json={"refresh_token": tokens["refresh_token"]}
    )
    assert response.status_code == 204
    refresh = await identity.token_response(
        grant_type="refresh_token", refresh_token=tokens["refresh_token"]
    )
    assert refresh.status_code == 400
    again = await identity.client.post(
        "/v1/auth/logout", json={"refresh_token": tokens["refresh_token"]}
    )
    assert again.status_code == 204


async def test_client_credentials_give_a_service_token(identity: Identity) -> None:
    response = await identity.token_response(
        grant_type="client_credentials",
        client_id="shipping_api",
        client_secret="dev-only-shipping_api",
    )
    assert response.status_code == 200
    body = response.json()
    assert body["refresh_token"] is None
    assert body["expires_in"] == 600
    payload = claims(body["access_token"])
    assert payload["sub"] == "service:shipping_api"
    assert payload["kind"] == "service"
    assert payload["aud"] == INTERNAL_AUDIENCE
    assert set(str(payload["scope"]).split()) == {
        "internal:introspect",
        "internal:accounts.read",
        "internal:consents.read",
        "internal:accounts.notify",
    }


async def test_client_credentials_accept_http_basic(identity: Identity) -> None:
    basic = base64.b64encode(b"privacy_api:dev-only-privacy_api").decode()
    response = await identity.client.post(
        "/v1/auth/token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": f"Basic {basic}"},
    )
    assert response.status_code == 200
    assert "internal:subjects" in response.json()["scope"]


async def test_wrong_client_secret_is_401_invalid_client(identity: Identity) -> None:
    response = await identity.token_response(
        grant_type="client_credentials", client_id="shipping_api", client_secret="guess"
    )
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


async def test_service_cannot_ask_for_a_scope_it_was_not_granted(identity: Identity) -> None:
    response = await identity.token_response(
        grant_type="client_credentials",
        client_id="shipping_api",
        client_secret="dev-only-shipping_api",
        scope="internal:subjects",
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_scope"


async def test_service_token_is_refused_on_public_routes(identity: Identity) -> None:
    token = await identity.service_token()
    response = await identity.client.get("/v1/accounts/me", headers=bearer(token))
    assert response.status_code == 401


async def test_account_token_is_refused_on_internal_routes(identity: Identity) -> None:
    account, headers = await identity.user()
    response = await identity.client.get(
        f"/internal/v1/accounts/{account['account_id']}", headers=headers
    )
    assert response.status_code == 401


async def test_expired_access_token_is_refused(settings: IdentitySettings) -> None:
    an_hour_ago = ManualClock(datetime.now(UTC) - timedelta(hours=1))
    async with identity_app(settings, clock=an_hour_ago) as identity:
        account = await identity.register()
        tokens = await identity.login(account["email"])
        response = await identity.client.get(
            "/v1/accounts/me", headers=bearer(tokens["access_token"])
        )
    assert response.status_code == 401
    assert response.json()["detail"] == "token expired"
