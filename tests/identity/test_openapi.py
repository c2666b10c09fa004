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
