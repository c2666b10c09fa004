"""``GET /internal/v1/accounts/{id}``: the sender details other services print on labels."""

from __future__ import annotations

import uuid

from tests.support.identity_app import Identity, bearer


async def test_service_reads_sender_details(identity: Identity) -> None:
    account = await identity.register()
    token = await identity.service_token("shipping_api")
    response = await identity.client.get(
        f"/internal/v1/accounts/{account['account_id']}", headers=bearer(token)
    )
    assert response.status_code == 200
    assert response.json() == {
        "account_id": account["account_id"],
        "debtor_number": account["debtor_number"],
        "name": account["name"],
        "contact_person": account["contact_person"],
        "street": account["street"],
        "house_number": account["house_number"],
        "postcode": account["postcode"],
        "city": account["city"],
        "country": account["country"],
        "email": account["email"],
        "email_verified": False,
        "phone": account["phone"],
        "is_restricted": False,
    }


async def test_without_a_service_token_it_is_401(identity: Identity) -> None:
    account = await identity.register()
    response = await identity.client.get(f"/internal/v1/accounts/{account['account_id']}")
    assert response.status_code == 401


async def test_unknown_account_is_404(identity: Identity) -> None:
    token = await identity.service_token("shipping_api")
    response = await identity.client.get(
        f"/internal/v1/accounts/{uuid.uuid4()}", headers=bearer(token)
    )
    assert response.status_code == 404
