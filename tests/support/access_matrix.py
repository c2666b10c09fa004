"""Who may call which route: one explicit rule per route of every service (OWASP API5).

The role × route test (``tests/security/test_api5_function_level.py``) checks every rule against
the running apps, and fails for a route without a rule, so a new route cannot ship without a
decision about who may call it. The contract tests run schemathesis per caller over the routes
the rules allow that caller.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum

from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts


class Caller(StrEnum):
    ANONYMOUS = "anonymous"
    ACCOUNT_HOLDER = "account_holder"
    """Logged in with e-mail and password: every account scope."""
    KEY_SHIPMENTS_READ = "api_key:shipments:read"
    KEY_SHIPMENTS_WRITE = "api_key:shipments:write"
    KEY_WEBHOOKS_MANAGE = "api_key:webhooks:manage"
    KEY_REPORTS_READ = "api_key:reports:read"
    SUPPORT = "support"
    PRIVACY_OFFICER = "privacy_officer"
    ADMIN = "admin"
    SERVICE_SHIPPING = "service:shipping_api"
    SERVICE_PRIVACY = "service:privacy_api"

    @property
    def is_service(self) -> bool:
        return self.value.startswith("service:")

    @property
    def is_api_key(self) -> bool:
        return self.value.startswith("api_key:")

    @property
    def scope(self) -> str | None:
        """The one scope of an API-key caller."""
        return self.value.removeprefix("api_key:") if self.is_api_key else None


ALL = frozenset(Caller)
HOLDER = frozenset({Caller.ACCOUNT_HOLDER})
STAFF = frozenset({Caller.SUPPORT, Caller.PRIVACY_OFFICER, Caller.ADMIN})
OFFICER = frozenset({Caller.PRIVACY_OFFICER, Caller.ADMIN})
SUPPORT = frozenset({Caller.SUPPORT, Caller.ADMIN})
ADMIN = frozenset({Caller.ADMIN})


def holder_or_key(scope: str) -> frozenset[Caller]:
    """The account holder's login, or an API key carrying ``scope``."""
    return HOLDER | {caller for caller in Caller if caller.scope == scope}


def services_with(*clients: str) -> frozenset[Caller]:
    return frozenset(Caller(f"service:{client}") for client in clients)


class Access(StrEnum):
    PUBLIC = "public"
    """No credentials needed; a bearer credential is ignored."""
    OPTIONAL = "optional"
    """Works without credentials; a credential sent is checked and changes what is seen."""
    REQUIRED = "required"
    """A bearer credential is required (401 without one)."""
    OWN_CREDENTIAL = "own_credential"
    """Authenticated by a credential of its own (a carrier's HMAC signature, a privacy
    request's token): without it, every bearer caller gets 401."""
    INTERNAL = "internal"
    """``/internal``: a service token with the route's scope."""


@dataclass(frozen=True)
class Rule:
    access: Access
    allowed: frozenset[Caller] = frozenset()
    denied_with: dict[Caller, int] = field(default_factory=dict)
    """Statuses other than the default denial (see :meth:`expected_denial`)."""
    token_from_link: bool = False
    """Also serves callers without a login who present a token of its own, which a link from
    the creating response supplies (a privacy request's ``X-Privacy-Request-Token``)."""

    def permits(self, caller: Caller) -> bool:
        if self.access is Access.PUBLIC:
            return True
        if self.access is Access.OWN_CREDENTIAL:
            return False
        if self.access is Access.OPTIONAL and caller is Caller.ANONYMOUS:
            return True
        return caller in self.allowed

    def expected_denial(self, caller: Caller) -> int:
        """401 for a missing or unusable credential, 403 for one without the right."""
        if caller in self.denied_with:
            return self.denied_with[caller]
        if self.access is Access.OWN_CREDENTIAL or caller is Caller.ANONYMOUS:
            return 401
        if self.access is Access.INTERNAL:
            return 403 if caller.is_service else 401
        return 401 if caller.is_service else 403


def public() -> Rule:
    return Rule(Access.PUBLIC, ALL)


def required(callers: Iterable[Caller]) -> Rule:
    return Rule(Access.REQUIRED, frozenset(callers))


def optional(callers: Iterable[Caller]) -> Rule:
    return Rule(Access.OPTIONAL, frozenset(callers) | {Caller.ANONYMOUS})


def internal(*clients: str) -> Rule:
    return Rule(Access.INTERNAL, services_with(*clients))


OPERATIONAL = {
    ("GET", "/healthz"): public(),
    ("GET", "/readyz"): public(),
    ("GET", "/metrics"): public(),
    ("GET", "/docs"): public(),
    ("GET", "/docs/assets/swagger-initializer-parcelpro.js"): public(),
}

RULES: dict[str, dict[tuple[str, str], Rule]] = {
    "identity": {
        **OPERATIONAL,
        ("POST", "/v1/auth/token"): public(),
        ("POST", "/v1/auth/logout"): public(),
        ("POST", "/v1/auth/verify-email"): public(),
        ("POST", "/v1/auth/verify-email/resend"): required(HOLDER),
        ("POST", "/v1/auth/password-reset"): public(),
        ("POST", "/v1/auth/password-reset/confirm"): public(),
        ("POST", "/v1/auth/register"): public(),
        ("GET", "/v1/accounts/me"): required(HOLDER),
        ("PATCH", "/v1/accounts/me"): required(HOLDER),
        ("POST", "/v1/accounts/me/password"): required(HOLDER),
        ("GET", "/v1/accounts/me/security-events"): required(HOLDER),
        ("POST", "/v1/api-keys"): required(HOLDER),
        ("GET", "/v1/api-keys"): required(HOLDER),
        ("GET", "/v1/api-keys/{key_id}"): required(HOLDER),
        ("DELETE", "/v1/api-keys/{key_id}"): required(HOLDER),
        ("GET", "/v1/staff/me"): required(STAFF),
        ("GET", "/v1/staff/users"): required(ADMIN),
        ("POST", "/v1/staff/users/{staff_id}/disable"): required(ADMIN),
        ("POST", "/v1/staff/users/{staff_id}/enable"): required(ADMIN),
        ("GET", "/v1/staff/accounts/{account_id}"): required(STAFF),
        ("GET", "/v1/staff/accounts"): required(STAFF),
        ("GET", "/v1/staff/access-log"): required(OFFICER),
        ("GET", "/.well-known/jwks.json"): public(),
        ("POST", "/internal/v1/api-keys/introspect"): internal("shipping_api", "privacy_api"),
        ("POST", "/internal/v1/staff/introspect"): internal("shipping_api", "privacy_api"),
        ("GET", "/internal/v1/accounts/{account_id}"): internal("shipping_api", "privacy_api"),
        ("POST", "/internal/v1/accounts/{account_id}/notices"): internal("shipping_api"),
        ("POST", "/internal/v1/subjects/export"): internal("privacy_api"),
        ("POST", "/internal/v1/subjects/erase"): internal("privacy_api"),
        ("POST", "/internal/v1/subjects/restrict"): internal("privacy_api"),
        ("POST", "/internal/v1/subjects/rectify"): internal("privacy_api"),
    },
    "shipping": {
        **OPERATIONAL,
        ("POST", "/v1/shipments"): required(holder_or_key("shipments:write")),
        ("POST", "/v1/shipments/bulk"): required(holder_or_key("shipments:write")),
        ("GET", "/v1/shipments"): required(holder_or_key("shipments:read") | SUPPORT),
        ("GET", "/v1/shipments/{shipment_id}"): required(holder_or_key("shipments:read") | SUPPORT),
        ("GET", "/v1/shipments/{shipment_id}/events"): required(
            holder_or_key("shipments:read") | SUPPORT
        ),
        ("POST", "/v1/shipments/{shipment_id}/cancel"): required(holder_or_key("shipments:write")),
        ("POST", "/v1/shipments/{shipment_id}/simulate"): required(
            holder_or_key("shipments:write")
        ),
        ("GET", "/v1/shipments/{shipment_id}/label"): required(holder_or_key("shipments:write")),
        ("POST", "/v1/labels"): required(holder_or_key("shipments:write")),
        ("GET", "/v1/tracking/{tracking_code}"): public(),
        ("POST", "/v1/carriers/{carrier}/events"): Rule(Access.OWN_CREDENTIAL),
        ("POST", "/v1/webhook-endpoints"): required(holder_or_key("webhooks:manage")),
        ("GET", "/v1/webhook-endpoints"): required(holder_or_key("webhooks:manage")),
        ("GET", "/v1/webhook-endpoints/{endpoint_id}"): required(holder_or_key("webhooks:manage")),
        ("PATCH", "/v1/webhook-endpoints/{endpoint_id}"): required(
            holder_or_key("webhooks:manage")
        ),
        ("DELETE", "/v1/webhook-endpoints/{endpoint_id}"): required(
            holder_or_key("webhooks:manage")
        ),
        ("GET", "/v1/webhook-endpoints/{endpoint_id}/deliveries"): required(
            holder_or_key("webhooks:manage")
        ),
        ("POST", "/v1/webhook-endpoints/{endpoint_id}/rotate-secret"): required(
            holder_or_key("webhooks:manage")
        ),
        ("POST", "/v1/webhook-endpoints/{endpoint_id}/ping"): required(
            holder_or_key("webhooks:manage")
        ),
        (
            "POST",
            "/v1/webhook-endpoints/{endpoint_id}/deliveries/{delivery_id}/redeliver",
        ): required(holder_or_key("webhooks:manage")),
        ("POST", "/v1/shipments/{shipment_id}/notes"): required(SUPPORT),
        ("GET", "/v1/shipments/{shipment_id}/notes"): required(SUPPORT),
        ("GET", "/v1/shipments/{shipment_id}/notes/{note_id}"): required(SUPPORT),
        ("GET", "/v1/reports/deliveries-by-postcode-area"): required(
            holder_or_key("reports:read") | ADMIN
        ),
        ("POST", "/internal/v1/subjects/export"): internal("privacy_api"),
        ("POST", "/internal/v1/subjects/erase"): internal("privacy_api"),
        ("POST", "/internal/v1/subjects/restrict"): internal("privacy_api"),
        ("POST", "/internal/v1/subjects/rectify"): internal("privacy_api"),
    },
    "privacy": {
        **OPERATIONAL,
        ("POST", "/v1/privacy/requests"): optional(HOLDER | OFFICER),
        ("POST", "/v1/privacy/requests/{request_id}/verify"): Rule(Access.OWN_CREDENTIAL),
        ("GET", "/v1/privacy/requests"): required(HOLDER | OFFICER),
        # Without a login, the request's own token (X-Privacy-Request-Token) is the credential.
        ("GET", "/v1/privacy/requests/{request_id}"): Rule(
            Access.REQUIRED, HOLDER | OFFICER, token_from_link=True
        ),
        ("GET", "/v1/privacy/requests/{request_id}/export"): Rule(
            Access.REQUIRED, HOLDER | OFFICER, token_from_link=True
        ),
        ("POST", "/v1/privacy/requests/{request_id}/extend"): required(OFFICER),
        ("POST", "/v1/privacy/requests/{request_id}/reject"): required(OFFICER),
        ("GET", "/v1/privacy/consents"): required(HOLDER),
        ("PUT", "/v1/privacy/consents"): required(HOLDER),
        ("GET", "/v1/privacy/consents/history"): required(HOLDER),
        ("GET", "/v1/privacy/processing-activities"): public(),
        ("POST", "/v1/privacy/disclosures"): required(OFFICER),
        ("GET", "/v1/privacy/disclosures"): required(OFFICER),
        ("GET", "/v1/privacy/disclosures/{disclosure_id}"): required(OFFICER),
        ("POST", "/v1/privacy/disclosures/{disclosure_id}/decision"): required(OFFICER),
        ("GET", "/v1/privacy/disclosures/{disclosure_id}/export"): required(OFFICER),
        ("POST", "/v1/privacy/incidents"): required(OFFICER),
        ("GET", "/v1/privacy/incidents"): required(OFFICER),
        ("GET", "/v1/privacy/incidents/{incident_id}"): required(OFFICER),
        ("PATCH", "/v1/privacy/incidents/{incident_id}"): required(OFFICER),
        ("GET", "/v1/privacy/audit-log"): required(OFFICER),
        ("POST", "/internal/v1/subjects/export"): internal("privacy_api"),
        ("POST", "/internal/v1/subjects/erase"): internal("privacy_api"),
        ("POST", "/internal/v1/subjects/restrict"): internal("privacy_api"),
        ("POST", "/internal/v1/subjects/rectify"): internal("privacy_api"),
        ("GET", "/internal/v1/consents"): internal("shipping_api"),
    },
}


@dataclass(frozen=True)
class Route:
    service: str
    method: str
    path: str
    route: APIRoute

    @property
    def key(self) -> tuple[str, str]:
        return self.method, self.path

    @property
    def operation(self) -> str:
        """As schemathesis names an operation: ``GET /v1/shipments/{shipment_id}``."""
        return f"{self.method} {self.path}"


def routes_of(service: str, app: FastAPI) -> Iterator[Route]:
    """Every (method, path) the app answers, from its route table (not its OpenAPI document)."""
    for context in iter_route_contexts(app.routes):
        original = context.original_route
        if not isinstance(original, APIRoute) or context.path_format is None:
            continue
        for method in sorted(context.methods or ()):
            yield Route(service, method, context.path_format, original)
