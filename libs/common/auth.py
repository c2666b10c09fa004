"""Who is calling: the :class:`Principal`, and the FastAPI dependencies that establish it.

Three kinds of credentials arrive as ``Authorization: Bearer ...``:

* access tokens (JWT, EdDSA, ``kid`` header) issued by identity to account holders and staff,
  verified locally against identity's JWKS (cached);
* API keys (``pp_live_...`` / ``pp_test_...``) of partner webshops, checked by identity's
  introspection endpoint and cached for at most 30 seconds, so a revoked key stops working
  everywhere within 30 seconds;
* service tokens (JWT with audience ``parcelpro-internal``) that one service obtains from
  identity with the client-credentials grant to call another service's ``/internal`` routes.

A staff member's access token is not trusted on its signature alone: the other services ask
identity whether the staff member is still active (cached for at most 30 seconds), so a
disabled staff login stops working everywhere within 30 seconds, not when its token expires.

Identity plugs in its own key source and API-key resolver (it owns the keys); the other
services use the HTTP implementations below.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import time
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Annotated, Any, Generic, Literal, Protocol, TypeVar

import httpx
import jwt
import orjson
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from libs.common.errors import BadGateway, Forbidden, Unauthorized, ValidationFailed
from libs.common.http import ServiceCaller

API_AUDIENCE = "parcelpro-api"
INTERNAL_AUDIENCE = "parcelpro-internal"
JWT_ALGORITHMS = ["EdDSA", "ES256"]
API_KEY_PREFIXES = ("pp_live_", "pp_test_")
INTROSPECTION_TTL_SECONDS = 30.0
NEGATIVE_INTROSPECTION_TTL_SECONDS = 5.0
JWKS_TTL_SECONDS = 60.0
"""As long as identity itself keeps a retired signing key's public half (decision 0103): after
an immediate rotation the old key is refused everywhere within a minute."""

K = TypeVar("K")
V = TypeVar("V")


class PrincipalKind(StrEnum):
    USER = "user"
    API_KEY = "api_key"
    STAFF = "staff"
    SERVICE = "service"


class Role(StrEnum):
    SUPPORT = "support"
    PRIVACY_OFFICER = "privacy_officer"
    ADMIN = "admin"


class Scope(StrEnum):
    """Scopes of account holders' credentials. An API key carries a subset; a login all."""

    SHIPMENTS_READ = "shipments:read"
    SHIPMENTS_WRITE = "shipments:write"
    WEBHOOKS_MANAGE = "webhooks:manage"
    REPORTS_READ = "reports:read"


ACCOUNT_SCOPES: frozenset[str] = frozenset(scope.value for scope in Scope)


class ServiceScope(StrEnum):
    """Scopes of service tokens, for ``/internal`` routes."""

    INTROSPECT = "internal:introspect"  # identity: check API keys and staff logins
    ACCOUNTS_READ = "internal:accounts.read"  # identity: an account's sender details
    SUBJECTS = "internal:subjects"  # every service: export, erase, restrict, rectify
    CONSENTS_READ = "internal:consents.read"  # privacy: a subject's consents
    ACCOUNTS_NOTIFY = "internal:accounts.notify"  # identity: mail an account holder a notice


SERVICE_SCOPES: frozenset[str] = frozenset(scope.value for scope in ServiceScope)


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller of a request."""

    kind: PrincipalKind
    subject: str
    """``sub`` of the token: an account id, a staff user id, ``service:<name>`` or a key id."""
    account_id: uuid.UUID | None = None
    """The account whose data this principal acts on (users and API keys)."""
    roles: frozenset[Role] = frozenset()
    scopes: frozenset[str] = frozenset()
    mode: Literal["live", "test"] | None = None
    """API keys only: test-mode keys work against the sandbox carrier."""
    key_id: uuid.UUID | None = None
    token_id: str | None = None
    expires_at: float | None = None
    claims: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def is_staff(self) -> bool:
        return self.kind is PrincipalKind.STAFF

    @property
    def is_account_holder(self) -> bool:
        return self.kind in {PrincipalKind.USER, PrincipalKind.API_KEY}

    @property
    def staff_id(self) -> uuid.UUID | None:
        return uuid.UUID(self.subject) if self.is_staff else None

    def has_role(self, *roles: Role) -> bool:
        return bool(self.roles.intersection(roles))

    def has_scopes(self, *scopes: str) -> bool:
        return all(scope in self.scopes for scope in scopes)


# --------------------------------------------------------------------------------------------
# Key sources and API-key resolvers
# --------------------------------------------------------------------------------------------


class KeySource(Protocol):
    """Public keys that verify access tokens, by ``kid``."""

    async def get_key(self, kid: str) -> Any | None: ...


class ApiKeyResolver(Protocol):
    """Turns an API key into a principal, or ``None`` when unknown or revoked."""

    async def resolve(self, api_key: str) -> Principal | None: ...


class StaffChecker(Protocol):
    """The roles a staff member holds now, or ``None`` when unknown or disabled."""

    async def current_roles(self, staff_id: uuid.UUID) -> frozenset[Role] | None: ...


class TtlCache(Generic[K, V]):
    """A small LRU cache whose entries expire; enough for per-process credential caching."""

    def __init__(self, *, ttl_seconds: float, max_entries: int = 10_000) -> None:
        self.ttl = ttl_seconds
        self.max_entries = max_entries
        self._items: OrderedDict[K, tuple[float, V]] = OrderedDict()

    def get(self, key: K) -> tuple[bool, V | None]:
        item = self._items.get(key)
        if item is None:
            return False, None
        expires, value = item
        if expires < time.monotonic():
            del self._items[key]
            return False, None
        self._items.move_to_end(key)
        return True, value

    def set(self, key: K, value: V, ttl_seconds: float | None = None) -> None:
        self._items[key] = (time.monotonic() + (ttl_seconds or self.ttl), value)
        self._items.move_to_end(key)
        while len(self._items) > self.max_entries:
            self._items.popitem(last=False)

    def pop(self, key: K) -> None:
        self._items.pop(key, None)

    def clear(self) -> None:
        self._items.clear()


class HttpJwksKeySource:
    """Identity's JWKS over HTTP, cached; an unknown ``kid`` triggers a (throttled) refetch."""

    def __init__(
        self,
        caller: ServiceCaller,
        *,
        path: str = "/.well-known/jwks.json",
        ttl_seconds: float = JWKS_TTL_SECONDS,
        min_refetch_seconds: float = 10.0,
    ) -> None:
        self.caller = caller
        self.path = path
        self.ttl = ttl_seconds
        self.min_refetch = min_refetch_seconds
        self._keys: dict[str, Any] = {}
        self._fetched_at = 0.0
        self._lock = asyncio.Lock()

    async def get_key(self, kid: str) -> Any | None:
        now = time.monotonic()
        fresh = now - self._fetched_at < self.ttl
        if kid in self._keys and fresh:
            return self._keys[kid]
        if now - self._fetched_at >= self.min_refetch or not fresh:
            async with self._lock:
                if time.monotonic() - self._fetched_at >= self.min_refetch or not fresh:
                    await self._refresh()
        return self._keys.get(kid)

    async def _refresh(self) -> None:
        document = await self.caller.request_json("GET", self.path)
        keys: dict[str, Any] = {}
        for jwk in document.get("keys", []) if isinstance(document, dict) else []:
            try:
                keys[jwk["kid"]] = jwt.PyJWK.from_dict(jwk).key
            except (KeyError, jwt.exceptions.PyJWKError):
                continue
        self._keys = keys
        self._fetched_at = time.monotonic()


class ServiceTokenProvider:
    """This service's own token for ``/internal`` calls (OAuth2 client credentials)."""

    def __init__(self, caller: ServiceCaller, *, client_id: str, client_secret: str) -> None:
        self.caller = caller
        self.client_id = client_id
        self.client_secret = client_secret
        self._token: str | None = None
        self._expires_at = 0.0
        self._lock = asyncio.Lock()

    async def token(self) -> str:
        if self._token and time.monotonic() < self._expires_at:
            return self._token
        async with self._lock:
            if self._token and time.monotonic() < self._expires_at:
                return self._token
            response = await self.caller.request(
                "POST",
                "/v1/auth/token",
                data={
                    "grant_type": "client_credentials",
                    "client_id": self.client_id,
                    "client_secret": self.client_secret,
                },
                idempotent=True,
            )
            if response.status_code != 200:
                raise Unauthorized(
                    f"identity refused this service's credentials ({self.client_id})"
                )
            try:
                body = orjson.loads(response.content)
                token, expires_in = str(body["access_token"]), float(body["expires_in"])
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
                raise BadGateway("identity answered the token request unusably") from exc
            self._token = token
            # Renew a minute early so a token never expires in flight.
            self._expires_at = time.monotonic() + max(30.0, expires_in - 60.0)
            return self._token

    def invalidate(self) -> None:
        self._token = None

    async def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {await self.token()}"}


def _hash_key(api_key: str) -> str:
    return hashlib.sha256(api_key.encode()).hexdigest()


def principal_from_introspection(body: dict[str, Any]) -> Principal | None:
    if not body.get("active"):
        return None
    mode = body.get("mode")
    return Principal(
        kind=PrincipalKind.API_KEY,
        subject=str(body["key_id"]),
        account_id=uuid.UUID(str(body["account_id"])),
        scopes=frozenset(str(s) for s in body.get("scopes", [])),
        mode="test" if mode == "test" else "live",
        key_id=uuid.UUID(str(body["key_id"])),
    )


class SingleFlight(Generic[K, V]):
    """Concurrent callers asking for the same key share one call."""

    def __init__(self) -> None:
        self._running: dict[K, asyncio.Future[V]] = {}

    async def run(self, key: K, call: Callable[[], Awaitable[V]]) -> V:
        pending = self._running.get(key)
        if pending is None:
            pending = asyncio.ensure_future(call())
            self._running[key] = pending
            pending.add_done_callback(lambda _: self._running.pop(key, None))
        # shield: one waiter giving up (client gone) must not cancel the others' check.
        return await asyncio.shield(pending)


async def post_as_service(
    caller: ServiceCaller, tokens: ServiceTokenProvider, path: str, body: dict[str, Any]
) -> httpx.Response:
    """POST ``body`` to identity with this service's token, asking for a new token once when
    identity no longer accepts the one held (a rotated signing key)."""
    response = await caller.request(
        "POST", path, json=body, headers=await tokens.headers(), idempotent=True
    )
    if response.status_code == 401:
        tokens.invalidate()
        response = await caller.request(
            "POST", path, json=body, headers=await tokens.headers(), idempotent=True
        )
    return response


class _Introspection(Generic[K, V]):
    """Answers of one of identity's introspection endpoints, cached for at most 30 s (a
    negative answer for ``negative_ttl_seconds``); concurrent requests with the same uncached
    key share one check."""

    unchecked = "the credential could not be checked"
    """The 401 when identity does not answer 200."""
    unusable = "identity answered the check unusably"
    """The 502 when its answer cannot be read: its failure, not the caller's (not 500/401)."""
    default_path = ""

    def __init__(
        self,
        caller: ServiceCaller,
        tokens: ServiceTokenProvider,
        *,
        path: str | None = None,
        ttl_seconds: float = INTROSPECTION_TTL_SECONDS,
        negative_ttl_seconds: float = NEGATIVE_INTROSPECTION_TTL_SECONDS,
    ) -> None:
        self.caller = caller
        self.tokens = tokens
        self.path = path or self.default_path
        self.cache: TtlCache[K, V | None] = TtlCache(
            ttl_seconds=min(ttl_seconds, INTROSPECTION_TTL_SECONDS)
        )
        self.negative_ttl = negative_ttl_seconds
        self._checks: SingleFlight[K, V | None] = SingleFlight()

    def _parse(self, body: Any) -> V | None:
        raise NotImplementedError

    async def _introspect(self, key: K, request: dict[str, str]) -> V | None:
        response = await post_as_service(self.caller, self.tokens, self.path, request)
        if response.status_code != 200:
            raise Unauthorized(self.unchecked)
        try:
            answer = self._parse(orjson.loads(response.content))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
            raise BadGateway(self.unusable) from exc
        self.cache.set(key, answer, None if answer else self.negative_ttl)
        return answer


class HttpApiKeyResolver(_Introspection[str, Principal]):
    """API keys checked by identity's introspection endpoint, cached for at most 30 s.

    Concurrent requests with the same uncached key share one check: a plug-in sending with
    thirty connections would otherwise ask identity thirty times whenever the entry expires.
    """

    unchecked = "the API key could not be checked"
    unusable = "identity answered the API-key check unusably"

    default_path = "/internal/v1/api-keys/introspect"

    async def resolve(self, api_key: str) -> Principal | None:
        cache_key = _hash_key(api_key)
        hit, cached = self.cache.get(cache_key)
        if hit:
            return cached
        return await self._checks.run(
            cache_key, lambda: self._introspect(cache_key, {"token": api_key})
        )

    def _parse(self, body: Any) -> Principal | None:
        return principal_from_introspection(body)


def roles_from_introspection(body: dict[str, Any]) -> frozenset[Role] | None:
    if body.get("active") is not True:
        return None
    roles = body.get("roles")
    if not isinstance(roles, list):
        raise TypeError("roles missing")
    known = {role.value for role in Role}
    return frozenset(Role(role) for role in roles if role in known)


class HttpStaffChecker(_Introspection[uuid.UUID, frozenset[Role]]):
    """Staff logins checked by identity's staff introspection, cached for at most 30 s.

    Decision 0108: disabling a staff member takes effect at once in identity and within the
    cache time here. Without an answer from identity a staff token is refused (503/504/502):
    staff read other people's data, so their access fails closed.
    """

    unchecked = "the staff login could not be checked"
    unusable = "identity answered the staff check unusably"

    default_path = "/internal/v1/staff/introspect"

    async def current_roles(self, staff_id: uuid.UUID) -> frozenset[Role] | None:
        hit, cached = self.cache.get(staff_id)
        if hit:
            return cached
        return await self._checks.run(
            staff_id, lambda: self._introspect(staff_id, {"staff_id": str(staff_id)})
        )

    def _parse(self, body: Any) -> frozenset[Role] | None:
        return roles_from_introspection(body)


# --------------------------------------------------------------------------------------------
# Verification
# --------------------------------------------------------------------------------------------


class Authenticator:
    """Turns a bearer credential into a :class:`Principal` (or raises 401)."""

    def __init__(
        self,
        *,
        key_source: KeySource,
        api_keys: ApiKeyResolver,
        issuer: str,
        leeway_seconds: int = 10,
        staff: StaffChecker | None = None,
    ) -> None:
        self.key_source = key_source
        self.api_keys = api_keys
        self.issuer = issuer
        self.leeway = leeway_seconds
        self.staff = staff
        """Asked about every staff token; ``None`` where the service checks staff itself."""

    async def authenticate(self, credential: str) -> Principal:
        if credential.startswith(API_KEY_PREFIXES):
            principal = await self.api_keys.resolve(credential)
            if principal is None:
                raise Unauthorized("the API key is unknown or revoked")
            return principal
        if credential.startswith("pp_"):
            raise Unauthorized("unknown API key type")
        principal = await self.verify_token(credential)
        if principal.is_staff and self.staff is not None:
            principal = await self.confirm_staff(principal)
        return principal

    async def confirm_staff(self, principal: Principal) -> Principal:
        """The staff principal with the roles both its token and identity grant, or 401."""
        assert self.staff is not None  # noqa: S101 - only called with a checker
        try:
            staff_id = uuid.UUID(principal.subject)
        except ValueError as exc:
            raise Unauthorized("invalid token subject") from exc
        current = await self.staff.current_roles(staff_id)
        if current is None:
            raise Unauthorized("this staff login is disabled")
        return dataclasses.replace(principal, roles=principal.roles & current)

    async def verify_token(self, token: str) -> Principal:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise Unauthorized("malformed token") from exc
        kid = header.get("kid")
        if header.get("alg") not in JWT_ALGORITHMS or not isinstance(kid, str):
            raise Unauthorized("token algorithm or key id not accepted")
        key = await self.key_source.get_key(kid)
        if key is None:
            raise Unauthorized("token signed by an unknown key")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=JWT_ALGORITHMS,
                audience=[API_AUDIENCE, INTERNAL_AUDIENCE],
                issuer=self.issuer,
                leeway=self.leeway,
                options={"require": ["exp", "iat", "sub", "aud", "iss"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise Unauthorized("token expired") from exc
        except jwt.PyJWTError as exc:
            raise Unauthorized("invalid token") from exc
        return principal_from_claims(claims)


def principal_from_claims(claims: dict[str, Any]) -> Principal:
    try:
        kind = PrincipalKind(claims.get("kind", ""))
    except ValueError as exc:
        raise Unauthorized("token of an unknown kind") from exc
    audience = claims.get("aud")
    audiences = {audience} if isinstance(audience, str) else set(audience or [])
    # A service token is only good for /internal; an account token never is.
    if (kind is PrincipalKind.SERVICE) != (audiences == {INTERNAL_AUDIENCE}):
        raise Unauthorized("token audience does not match its kind")
    if kind is PrincipalKind.API_KEY:
        raise Unauthorized("API keys are not tokens")
    roles: set[Role] = set()
    for role in claims.get("roles", []) or []:
        try:
            roles.add(Role(role))
        except ValueError:
            continue
    scope = claims.get("scope", "")
    scopes = frozenset(scope.split()) if isinstance(scope, str) else frozenset()
    account_id = None
    if kind is PrincipalKind.USER:
        try:
            account_id = uuid.UUID(str(claims["sub"]))
        except ValueError as exc:
            raise Unauthorized("invalid token subject") from exc
    return Principal(
        kind=kind,
        subject=str(claims["sub"]),
        account_id=account_id,
        roles=frozenset(roles) if kind is PrincipalKind.STAFF else frozenset(),
        scopes=scopes,
        token_id=claims.get("jti"),
        expires_at=float(claims["exp"]),
        claims=claims,
    )


# --------------------------------------------------------------------------------------------
# FastAPI dependencies
# --------------------------------------------------------------------------------------------

BEARER_SCHEME = "HTTPBearer"
OPTIONAL_BEARER_SCHEME = "HTTPBearerOptional"
_DESCRIPTION = "An access token from `POST /v1/auth/token`, or an API key (`pp_live_…`)."
_bearer = HTTPBearer(auto_error=False, scheme_name=BEARER_SCHEME, description=_DESCRIPTION)
# A second scheme name marks routes where credentials are optional; the OpenAPI post-processor
# documents them as "HTTPBearer or nothing" (libs.common.openapi).
_optional_bearer = HTTPBearer(
    auto_error=False, scheme_name=OPTIONAL_BEARER_SCHEME, description=_DESCRIPTION
)


async def remember_principal(request: Request, credential: str) -> Principal:
    """Authenticate ``credential`` once per request; later calls reuse the answer."""
    cached = getattr(request.state, "principal", None)
    if isinstance(cached, Principal):
        return cached
    authenticator: Authenticator = request.app.state.authenticator
    principal = await authenticator.authenticate(credential)
    request.state.principal = principal
    if principal.is_account_holder and principal.account_id is not None:
        request.state.account_id = principal.account_id
    elif principal.is_staff:
        request.state.account_id = principal.subject
    return principal


async def _authenticate(
    request: Request, credentials: HTTPAuthorizationCredentials | None
) -> Principal | None:
    if credentials is None:
        return None
    return await remember_principal(request, credentials.credentials)


async def get_optional_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_optional_bearer)],
) -> Principal | None:
    """The caller when credentials are sent (public routes that also serve account holders)."""
    return await _authenticate(request, credentials)


OptionalPrincipalDep = Annotated[Principal | None, Depends(get_optional_principal)]


async def _get_any_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    principal = await _authenticate(request, credentials)
    if principal is None:
        raise Unauthorized("send an access token or API key as 'Authorization: Bearer ...'")
    return principal


async def get_principal(
    principal: Annotated[Principal, Depends(_get_any_principal)],
) -> Principal:
    if principal.kind is PrincipalKind.SERVICE:
        raise Unauthorized("service tokens are only accepted on internal routes")
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def require_account(*scopes: Scope) -> Callable[..., Awaitable[Principal]]:
    """An account holder (login or API key) whose credential carries ``scopes``."""

    async def dependency(principal: PrincipalDep) -> Principal:
        if not principal.is_account_holder:
            raise Forbidden("this route is for account holders")
        missing = [s.value for s in scopes if s.value not in principal.scopes]
        if missing:
            raise Forbidden(f"the credential lacks the scope(s): {', '.join(missing)}")
        return principal

    return dependency


def require_user() -> Callable[..., Awaitable[Principal]]:
    """An account holder logged in with a password (not an API key): account management."""

    async def dependency(principal: PrincipalDep) -> Principal:
        if principal.kind is not PrincipalKind.USER:
            raise Forbidden("this route needs an account holder's login, not an API key")
        return principal

    return dependency


def require_staff(*roles: Role) -> Callable[..., Awaitable[Principal]]:
    """A staff member with one of ``roles`` (admins pass every staff check)."""
    allowed = set(roles) | {Role.ADMIN}

    async def dependency(principal: PrincipalDep) -> Principal:
        if not principal.is_staff or not principal.roles.intersection(allowed):
            raise Forbidden("this route is for staff with the role: " + ", ".join(sorted(allowed)))
        return principal

    return dependency


ACCESS_REASON_HEADER = "X-Access-Reason"
"""Where staff state why they read someone's data, recorded with the read: a header, since a
reason often names a person and query strings end up in URLs, browser history and proxy logs
(decisions 0108, 0210)."""
ACCESS_REASON_MIN_LENGTH = 5


def stated_reason(
    value: str | None, *, field: str = ACCESS_REASON_HEADER, location: str = "header"
) -> str:
    """A staff member's reason for an audited read, trimmed; ``422`` naming ``field`` when it
    is missing or too short to say anything."""
    if value is None or len(value.strip()) < ACCESS_REASON_MIN_LENGTH:
        raise ValidationFailed.for_field(
            field,
            "staff must say why they access this data "
            f"(at least {ACCESS_REASON_MIN_LENGTH} characters)",
            location=location,
        )
    return value.strip()


def require_service(*scopes: ServiceScope) -> Callable[..., Awaitable[Principal]]:
    """Another Parcel Pro service holding ``scopes`` (for ``/internal`` routes)."""

    async def dependency(principal: Annotated[Principal, Depends(_get_any_principal)]) -> Principal:
        if principal.kind is not PrincipalKind.SERVICE:
            raise Unauthorized("internal routes need a service token")
        missing = [s.value for s in scopes if s.value not in principal.scopes]
        if missing:
            raise Forbidden(f"the service token lacks the scope(s): {', '.join(missing)}")
        return principal

    return dependency


def scopes_from(values: Iterable[str]) -> frozenset[str]:
    return frozenset(v for v in values if v in ACCOUNT_SCOPES)
