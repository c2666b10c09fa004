"""Token-endpoint errors: problem documents that also carry RFC 6749's ``error`` code, so
OAuth2 clients (and Swagger's Authorize dialog) understand them."""

from __future__ import annotations

from typing import ClassVar

from libs.common.errors import DomainError


class OAuthError(DomainError):
    error: ClassVar[str] = "invalid_request"
    status, slug, title = 400, "invalid-request", "Invalid token request"


class InvalidRequest(OAuthError):
    pass


class InvalidGrant(OAuthError):
    error = "invalid_grant"
    status, slug, title = 400, "invalid-grant", "Invalid credentials or grant"


class InvalidClient(OAuthError):
    error = "invalid_client"
    status, slug, title = 401, "invalid-client", "Client authentication failed"

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(detail, headers={"WWW-Authenticate": 'Basic realm="parcelpro"'})


class InvalidScope(OAuthError):
    error = "invalid_scope"
    status, slug, title = 400, "invalid-scope", "Scope not allowed"


class UnsupportedGrantType(OAuthError):
    error = "unsupported_grant_type"
    status, slug, title = 400, "unsupported-grant-type", "Grant type not supported"
