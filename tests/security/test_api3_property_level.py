"""OWASP API3 (broken object property level authorization): clients cannot set properties the
server owns, and responses carry only what their schema documents — never a hash, a blind
index, a ciphertext or a key id the service keeps for itself."""

from __future__ import annotations

import re
import uuid

import httpx
import orjson
import pytest
from sqlalchemy import MetaData, select

from libs.common.db import Database
from services.identity_api.models import Base as IdentityBase
from services.privacy_api.models import Base as PrivacyBase
from services.shipping_api.carriers.signatures import SIGNATURE_HEADER, sign
from services.shipping_api.models import Base as ShippingBase
from tests.security.conftest import Running, ShippingWorld
from tests.security.documents import SERVICES, json_body, operations, subschemas, success_schemas
from tests.support.access_matrix import RULES, Access, Caller
from tests.support.identity_app import PASSWORD, Identity
from tests.support.privacy_harness import Privacy
from tests.support.shipping_factories import shipment_body

SERVER_OWNED = (
    "id",
    "account_id",
    "role",
    "roles",
    "debtor_number",
    "status",
    "created_at",
    "updated_at",
    "is_staff",
    "email_verified",
    "password_hash",
    "price",
)
"""Properties the server assigns; a body that tries to set one is refused whole."""

INTERNAL_NAME = re.compile(
    r"(^|_)(hash|hashed|password|encrypted|ciphertext|cipher|private|salt|encryption)($|_)"
    r"|_index$|(^|_)(kid|key_id)$"
)
"""Names of what a service keeps for itself: hashes, blind indexes, ciphertexts, key ids."""

DOCUMENTED_ON_PURPOSE = {
    ("GET", "/.well-known/jwks.json", "keys[].kid"): "public keys are published by design",
    ("POST", "/internal/v1/api-keys/introspect", "key_id"): "the key's own id (its owner's `id`)",
}

SECRET_COLUMN = re.compile(r"(_hash|_index|_encrypted|_ciphertext)$")


@pytest.mark.parametrize("service", SERVICES)
def test_every_request_body_object_refuses_unknown_properties(service: str) -> None:
    open_objects = [
        f"{method} {path}: {where or 'body'}"
        for method, path, operation in operations(service)
        if (body := json_body(service, operation)) is not None
        for where, schema in subschemas(service, body)
        if "properties" in schema and schema.get("additionalProperties") is not False
    ]
    assert open_objects == []


@pytest.mark.parametrize("service", SERVICES)
def test_no_response_documents_an_internal_property(service: str) -> None:
    leaking = [
        f"{method} {path}: {where}"
        for method, path, operation in operations(service)
        for schema in success_schemas(service, operation)
        for where, _ in subschemas(service, schema)
        if where
        and INTERNAL_NAME.search(where.rsplit(".", 1)[-1].strip("[]{}"))
        and (method, path, where) not in DOCUMENTED_ON_PURPOSE
    ]
    assert leaking == []


def _caller_for(service: str, method: str, path: str) -> Caller:
    rule = RULES[service][(method, path)]
    if rule.permits(Caller.ANONYMOUS) or not rule.allowed:
        return Caller.ANONYMOUS
    return sorted(rule.allowed, key=lambda caller: list(Caller).index(caller))[0]


def _fill(path: str) -> str:
    return re.sub(r"\{carrier\}", "postnl", re.sub(r"\{[a-z_]+\}", str(uuid.uuid4()), path))


@pytest.mark.parametrize("service", SERVICES)
async def test_server_owned_properties_are_refused_on_every_body(
    service: str, running_services: dict[str, Running]
) -> None:
    running = running_services[service]
    unrefused: list[str] = []
    for method, path, operation in operations(service):
        body_schema = json_body(service, operation)
        if body_schema is None:
            continue
        documented = body_schema.get("properties", {})
        injected = {name: "x" for name in SERVER_OWNED if name not in documented}
        raw = orjson.dumps(injected)
        headers = {**running.headers(_caller_for(service, method, path))}
        headers["Content-Type"] = "application/json"
        if RULES[service][(method, path)].access is Access.OWN_CREDENTIAL:
            headers[SIGNATURE_HEADER] = sign("dev-only-carrier-postnl", raw)
            headers["X-Privacy-Request-Token"] = "a-token"
        response = await running.client.request(method, _fill(path), content=raw, headers=headers)
        reported = {
            error["field"]
            for error in (response.json().get("errors") or [])
            if error["type"] == "extra_forbidden"
        }
        if response.status_code != 422 or reported != set(injected):
            unrefused.append(f"{method} {path}: {response.status_code} {sorted(reported)}")
    assert unrefused == []


async def _secret_values(database: Database, metadata: MetaData) -> set[str]:
    values: set[str] = set()
    async with database.session() as session:
        for table in metadata.sorted_tables:
            for column in table.columns:
                if SECRET_COLUMN.search(column.name):
                    rows = await session.scalars(select(column).where(column.is_not(None)))
                    values |= {str(v) for v in rows if v and len(str(v)) >= 8}
    return values


def _assert_no_secret_in(responses: list[httpx.Response], secrets: set[str]) -> None:
    assert secrets, "the scenario stored no secret to look for"
    leaked = [
        (r.request.url.path, secret) for r in responses for secret in secrets if secret in r.text
    ]
    assert leaked == []


async def test_identity_responses_hold_no_stored_hash_or_ciphertext(identity: Identity) -> None:
    account, login = await identity.user()
    client = identity.client
    responses = [
        await client.get("/v1/accounts/me", headers=login),
        await client.patch(
            "/v1/accounts/me",
            json={"iban": "NL02ABNA0123456789", "current_password": PASSWORD},
            headers=login,
        ),
        await client.post(
            "/v1/api-keys", json={"name": "shop", "scopes": ["shipments:read"]}, headers=login
        ),
        await client.get("/v1/api-keys", headers=login),
        await client.get("/v1/accounts/me/security-events", headers=login),
        await client.get("/.well-known/jwks.json"),
    ]
    assert all(r.status_code < 300 for r in responses), [r.text for r in responses]
    secrets = await _secret_values(identity.database, IdentityBase.metadata)
    _assert_no_secret_in(responses, secrets)
    assert account["iban"] == "NL91ABNA0417164300"


async def test_shipping_responses_hold_no_blind_index_or_webhook_secret(
    shipping_world: ShippingWorld,
) -> None:
    client = shipping_world.running.client
    _, owner = shipping_world.account()
    created = await shipping_world.create_shipment(owner)
    endpoint = await client.post(
        "/v1/webhook-endpoints",
        json={"url": "https://93.184.215.14/hook", "events": ["shipment.delivered"]},
        headers=owner,
    )
    responses = [
        endpoint,
        await client.post(
            "/v1/shipments/bulk", json={"shipments": [shipment_body()]}, headers=owner
        ),
        await client.get(f"/v1/shipments/{created['id']}", headers=owner),
        await client.get("/v1/shipments", headers=owner),
        await client.get(f"/v1/tracking/{created['tracking_code']}"),
        await client.get(f"/v1/webhook-endpoints/{endpoint.json()['id']}", headers=owner),
        await client.get("/v1/webhook-endpoints", headers=owner),
    ]
    assert all(r.status_code < 300 for r in responses), [r.text for r in responses]
    secrets = await _secret_values(shipping_world.database, ShippingBase.metadata)
    _assert_no_secret_in(responses, secrets)
    shown_once = endpoint.json()["secret"]
    assert all(shown_once not in r.text for r in responses[1:])


async def test_privacy_responses_hold_no_code_or_token_hash_or_blind_index(
    privacy: Privacy,
) -> None:
    client = privacy.client
    created = await client.post(
        "/v1/privacy/requests", json={"type": "access", "email": "jan@example.nl"}
    )
    token = {"X-Privacy-Request-Token": created.json()["access_token"]}
    account_id = privacy.downstreams.identity.add_account(email="holder@example.nl")
    own = await privacy.request_as_account(account_id, type="erasure")
    responses = [
        created,
        await client.get(f"/v1/privacy/requests/{created.json()['id']}", headers=token),
        await client.get(f"/v1/privacy/requests/{own['id']}", headers=privacy.user(account_id)),
        await client.get("/v1/privacy/requests", headers=privacy.officer()),
        await client.get("/v1/privacy/consents", headers=privacy.user(account_id)),
    ]
    assert all(r.status_code < 300 for r in responses), [r.text for r in responses]
    secrets = await _secret_values(privacy.app.state.database, PrivacyBase.metadata)
    _assert_no_secret_in(responses, secrets)
    assert all(token["X-Privacy-Request-Token"] not in r.text for r in responses[1:])
