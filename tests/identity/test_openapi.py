"""The OpenAPI document integrators generate clients from."""

from __future__ import annotations

from tests.support.identity_app import Identity


async def test_docs_offer_login_with_password_and_problem_errors(identity: Identity) -> None:
    document = (await identity.client.get("/openapi.json")).json()
    flow = document["components"]["securitySchemes"]["OAuth2Password"]["flows"]["password"]
    assert flow["tokenUrl"] == "/v1/auth/token"
    me = document["paths"]["/v1/accounts/me"]["get"]
    assert {"OAuth2Password": []} in me["security"]
    for path, item in document["paths"].items():
        for method, operation in item.items():
            for status, response in operation["responses"].items():
                if int(status) >= 400:
                    assert "application/problem+json" in response["content"], (method, path)
    internal = document["paths"]["/internal/v1/subjects/erase"]["post"]
    assert internal["tags"] == ["internal"]
    assert {"OAuth2Password": []} not in internal["security"]


async def test_docs_name_the_headers_clients_act_on(identity: Identity) -> None:
    document = (await identity.client.get("/openapi.json")).json()
    created = document["paths"]["/v1/api-keys"]["post"]["responses"]["201"]
    assert created["headers"]["Location"]["required"] is True
    for path, item in document["paths"].items():
        if not path.startswith("/v1/"):
            continue
        for method, operation in item.items():
            responses = operation["responses"]
            # Decision 0650: any route that reads the database can find it away for a moment.
            for status in ("429", "503"):
                retry_after = responses[status]["headers"]["Retry-After"]
                assert retry_after["schema"] == {"type": "integer", "minimum": 1}, (method, path)
            if "201" in responses:
                assert "Location" in responses["201"]["headers"], (method, path)
