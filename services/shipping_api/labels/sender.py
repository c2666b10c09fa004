"""The sender on a label is the account holder, as identity knows it (decision 0004:
``GET /internal/v1/accounts/{account_id}``), cached briefly."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from libs.common.auth import ServiceTokenProvider, TtlCache
from libs.common.errors import BadGateway, Unauthorized
from libs.common.http import ServiceCaller


@dataclass(frozen=True, slots=True)
class Sender:
    name: str
    contact_person: str | None
    street: str
    house_number: str
    postcode: str
    city: str
    country: str


class SenderDirectory:
    def __init__(
        self, identity: ServiceCaller, tokens: ServiceTokenProvider, *, ttl_seconds: float
    ) -> None:
        self.identity = identity
        self.tokens = tokens
        self.cache: TtlCache[uuid.UUID, Sender] = TtlCache(
            ttl_seconds=max(ttl_seconds, 0.001), max_entries=5000
        )

    async def sender(self, account_id: uuid.UUID) -> Sender:
        hit, cached = self.cache.get(account_id)
        if hit and cached is not None:
            return cached
        path = f"/internal/v1/accounts/{account_id}"
        try:
            response = await self.identity.request("GET", path, headers=await self.tokens.headers())
            if response.status_code == 401:
                # Our service token was rotated or expired early: fetch a new one once.
                self.tokens.invalidate()
                response = await self.identity.request(
                    "GET", path, headers=await self.tokens.headers()
                )
        except Unauthorized as exc:
            raise BadGateway("identity refused this service's credentials") from exc
        if response.status_code == 404:
            raise BadGateway("identity does not know the sender account of this shipment")
        if response.status_code != 200:
            raise BadGateway(f"identity answered {response.status_code} for the sender")
        try:
            body = response.json()
            sender = Sender(
                name=str(body["name"]),
                contact_person=body.get("contact_person"),
                street=str(body["street"]),
                house_number=str(body["house_number"]),
                postcode=str(body["postcode"]),
                city=str(body["city"]),
                country=str(body["country"]),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise BadGateway("identity answered with an unusable sender") from exc
        self.cache.set(account_id, sender)
        return sender
