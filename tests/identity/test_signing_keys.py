"""The JWKS and key rotation: a new key is published before it signs, and tokens of the old
key stay valid until they expire."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import jwt
from sqlalchemy import select

from libs.common.clock import ManualClock
from services.identity_api.models import SigningKey
from services.identity_api.settings import IdentitySettings
from tests.support.identity_app import Identity, bearer, identity_app


def kid(token: str) -> str:
    return str(jwt.get_unverified_header(token)["kid"])


async def jwks_kids(identity: Identity) -> list[str]:
    response = await identity.client.get("/.well-known/jwks.json")
    assert response.status_code == 200
    return [key["kid"] for key in response.json()["keys"]]


async def rotate(identity: Identity, *, immediately: bool = False) -> str:
    runtime = identity.app.state.identity_runtime
    async with identity.database.session() as session:
        key = await runtime.keys.rotate(session, identity.clock.now(), immediately=immediately)
        await session.commit()
    return str(key.kid)


async def test_jwks_publishes_the_signing_key(identity: Identity) -> None:
    response = await identity.client.get("/.well-known/jwks.json")
    [key] = response.json()["keys"]
    assert key["kty"] == "OKP"
    assert key["crv"] == "Ed25519"
    assert key["alg"] == "EdDSA"
    assert "d" not in key
    account = await identity.register()
    tokens = await identity.login(account["email"])
    assert kid(tokens["access_token"]) == key["kid"]
    signing_key = jwt.PyJWK.from_dict(key).key
    jwt.decode(tokens["access_token"], signing_key, algorithms=["EdDSA"], audience="parcelpro-api")


async def test_the_key_survives_a_restart(identity: Identity) -> None:
    first = await jwks_kids(identity)
    runtime = identity.app.state.identity_runtime
    async with identity.database.session() as session:
        assert await runtime.keys.ensure_key(session, identity.clock.now()) is None
    assert await jwks_kids(identity) == first


async def test_rotation_publishes_first_and_logs_nobody_out(settings: IdentitySettings) -> None:
    # Started 12 minutes ago, so the tokens of both keys are still valid by the real clock
    # that verification uses.
    clock = ManualClock(datetime.now(UTC) - timedelta(minutes=12))
    async with identity_app(settings, clock=clock) as identity:
        await _rotation_publishes_first_and_logs_nobody_out(identity)


async def _rotation_publishes_first_and_logs_nobody_out(identity: Identity) -> None:
    account = await identity.register()
    [old] = await jwks_kids(identity)
    before = await identity.login(account["email"])

    new = await rotate(identity)
    assert await jwks_kids(identity) == [old, new]
    # Published, not yet signing: verifiers that cached the JWKS must learn it first.
    still_old = await identity.login(account["email"])
    assert kid(still_old["access_token"]) == old

    identity.clock.advance(timedelta(minutes=11))
    after = await identity.login(account["email"])
    assert kid(after["access_token"]) == new
    for token in (before, after):
        me = await identity.client.get("/v1/accounts/me", headers=bearer(token["access_token"]))
        assert me.status_code == 200

    identity.clock.advance(timedelta(minutes=17))
    assert await jwks_kids(identity) == [new]


async def test_immediate_rotation_refuses_tokens_of_the_old_key(identity: Identity) -> None:
    account = await identity.register()
    before = await identity.login(account["email"])
    new = await rotate(identity, immediately=True)
    assert await jwks_kids(identity) == [new]
    response = await identity.client.get("/v1/accounts/me", headers=bearer(before["access_token"]))
    assert response.status_code == 401
    after = await identity.login(account["email"])
    assert kid(after["access_token"]) == new


async def test_private_keys_are_stored_encrypted(identity: Identity) -> None:
    async with identity.database.session() as session:
        sealed = (await session.scalars(select(SigningKey.private_key_encrypted))).all()
    assert sealed
    assert all(value.startswith("aesgcm:") for value in sealed)
