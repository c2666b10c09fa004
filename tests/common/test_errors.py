"""Every error is an RFC 9457 problem document; validation errors name the field."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from libs.common.app import Overrides, ServiceDefinition, build_app
from libs.common.errors import Conflict, TooManyRequests, ValidationFailed, problem_responses
from libs.common.validation import Country
from services.privacy_api.app import MIGRATIONS_DIR
from services.privacy_api.models import RequestLog
from services.privacy_api.settings import PrivacySettings
from tests.support.apps import running
from tests.support.db import rolled_back

router = APIRouter()


class Address(BaseModel):
    model_config = ConfigDict(extra="forbid")
    postcode: str = Field(pattern=r"^\d{4} ?[A-Z]{2}$")
    country: Country


class Order(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reference: str = Field(max_length=10)
    recipient: Address


@router.post("/v1/orders", status_code=201, responses=problem_responses(409, 422))
async def create_order(order: Order) -> Order:
    if order.reference == "taken":
        raise Conflict("an order with this reference exists")
    if order.reference == "rule":
        raise ValidationFailed.for_field("reference", "may not be 'rule'")
    return order


@router.get("/v1/slow")
async def slow() -> dict[str, str]:
    raise TooManyRequests(17)


@router.get("/v1/crash")
async def crash() -> dict[str, str]:
    raise RuntimeError("password=hunter2 in a stack trace")


@pytest.fixture
async def client(privacy_settings: PrivacySettings) -> AsyncIterator[httpx.AsyncClient]:
    def create_app(settings: PrivacySettings, overrides: Overrides):  # type: ignore[no-untyped-def]
        return build_app(
            ServiceDefinition(
                settings=settings,
                title="errors",
                description="",
                version="0",
                routers=[router],
                request_log_model=RequestLog,
                migrations_dir=MIGRATIONS_DIR,
            ),
            overrides,
        )

    async with (
        rolled_back(privacy_settings) as database,
        running(create_app, privacy_settings, Overrides(database=database)) as (_, c),
    ):
        yield c


def assert_problem(response: httpx.Response, status: int) -> dict[str, object]:
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status
    assert {"type", "title", "status", "detail", "instance", "request_id"} <= set(body)
    assert body["request_id"] == response.headers["x-request-id"]
    return body


async def test_nested_validation_error_names_the_field(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/orders", json={"reference": "A1", "recipient": {"postcode": "12", "country": "NL"}}
    )
    body = assert_problem(response, 422)
    assert body["errors"] == [
        {
            "field": "recipient.postcode",
            "location": "body",
            "message": "String should match pattern '^\\d{4} ?[A-Z]{2}$'",
            "type": "string_pattern_mismatch",
        }
    ]
    assert "recipient.postcode" in str(body["detail"])


async def test_library_validation_message_reaches_the_client(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/orders",
        json={"reference": "A1", "recipient": {"postcode": "1234 AB", "country": "XX"}},
    )
    body = assert_problem(response, 422)
    [error] = body["errors"]  # type: ignore[misc]
    assert error["field"] == "recipient.country"
    assert "ISO 3166-1" in error["message"]


async def test_unknown_fields_are_rejected(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/orders",
        json={
            "reference": "A1",
            "role": "admin",
            "recipient": {"postcode": "1234 AB", "country": "NL"},
        },
    )
    body = assert_problem(response, 422)
    assert [e["field"] for e in body["errors"]] == ["role"]  # type: ignore[union-attr]


async def test_malformed_json_is_a_422_naming_the_body_and_where(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(
        "/v1/orders",
        content=b'{"reference": "A1",\n "recipient": {"postcode" "1234 AB"}}',
        headers={"Content-Type": "application/json"},
    )
    body = assert_problem(response, 422)
    message = "not valid JSON at line 2, column 27: Expecting ':' delimiter"
    assert body["detail"] == f"body: {message}"
    assert body["errors"] == [
        {"field": "body", "location": "body", "message": message, "type": "json_invalid"}
    ]


async def test_json_nested_too_deep_to_parse_is_a_422_naming_the_body(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(
        "/v1/orders", content=b"[" * 100_000, headers={"Content-Type": "application/json"}
    )
    body = assert_problem(response, 422)
    assert body["errors"] == [
        {"field": "body", "location": "body", "message": "not valid JSON", "type": "json_invalid"}
    ]


async def test_domain_errors_map_to_their_status(client: httpx.AsyncClient) -> None:
    recipient = {"postcode": "1234 AB", "country": "NL"}
    conflict = await client.post("/v1/orders", json={"reference": "taken", "recipient": recipient})
    assert assert_problem(conflict, 409)["detail"] == "an order with this reference exists"
    rule = await client.post("/v1/orders", json={"reference": "rule", "recipient": recipient})
    assert assert_problem(rule, 422)["errors"][0]["field"] == "reference"  # type: ignore[index]


async def test_rate_limit_problem_carries_retry_after(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/slow")
    assert_problem(response, 429)
    assert response.headers["retry-after"] == "17"


async def test_unknown_route_and_wrong_method(client: httpx.AsyncClient) -> None:
    missing = await client.get("/v1/nothing-here")
    assert_problem(missing, 404)
    wrong = await client.delete("/v1/orders")
    assert_problem(wrong, 405)
    assert wrong.headers["allow"] == "POST"


async def test_crash_is_a_500_problem_without_stack_trace(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/crash")
    body = assert_problem(response, 500)
    assert "hunter2" not in response.text
    assert "Traceback" not in response.text
    assert "RuntimeError" not in response.text
    assert body["instance"] == "/v1/crash"


async def test_openapi_documents_errors_as_problem_json(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    responses = document["paths"]["/v1/orders"]["post"]["responses"]
    for status in ("409", "422"):
        assert responses[status]["content"] == {
            "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
        }
    assert "HTTPValidationError" not in document["components"]["schemas"]
    assert document["components"]["schemas"]["Problem"]["properties"]["errors"]


async def test_body_that_is_not_text_is_a_422_naming_the_body(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/orders", content=b"\x05\x1b\x02\xff", headers={"Content-Type": "application/json"}
    )
    body = assert_problem(response, 422)
    assert body["detail"] == "body: not valid JSON: not UTF-8 text"
    assert body["errors"][0]["field"] == "body"  # type: ignore[index]
