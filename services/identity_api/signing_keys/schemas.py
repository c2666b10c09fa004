"""The JWKS document (RFC 7517) with Ed25519 keys (RFC 8037)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class Jwk(BaseModel):
    kty: Literal["OKP"] = Field(description="Key type: octet key pair (RFC 8037).")
    crv: Literal["Ed25519"]
    x: str = Field(description="The public key, base64url.")
    kid: str = Field(description="Key id, as in the token header.", examples=["20261125-9f2c41ab"])
    use: Literal["sig"]
    alg: Literal["EdDSA"]


class Jwks(BaseModel):
    keys: list[Jwk]
