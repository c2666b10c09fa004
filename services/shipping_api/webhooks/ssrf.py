"""Webhook URLs must never reach into our own network (SSRF). Refused: schemes other than
http(s), credentials in the URL, and hosts that are — or resolve to — loopback, private,
link-local (cloud metadata lives at 169.254.169.254), shared, reserved or multicast addresses.
The check runs when an endpoint is saved and again, with a fresh DNS answer, at every delivery;
the delivery then connects to exactly the address that was checked (no DNS rebinding)."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

BLOCKED_HOSTNAMES = frozenset({"localhost", "metadata", "metadata.google.internal"})


class UnsafeUrl(ValueError):
    """The URL may not be called."""


@dataclass(frozen=True, slots=True)
class WebhookTarget:
    scheme: str
    host: str
    port: int
    path: str
    """Path and query, as sent."""

    @property
    def host_header(self) -> str:
        default = 443 if self.scheme == "https" else 80
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == default else f"{host}:{self.port}"

    def url_for(self, address: IPAddress) -> str:
        host = f"[{address}]" if address.version == 6 else str(address)
        return f"{self.scheme}://{host}:{self.port}{self.path}"


class Resolver:
    """DNS through the event loop (the system resolver), all addresses of a name."""

    async def resolve(self, host: str, port: int) -> list[IPAddress]:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
        return [ipaddress.ip_address(info[4][0]) for info in infos]


def parse_target(url: str) -> WebhookTarget:
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise UnsafeUrl("not a valid URL") from exc
    if parts.scheme not in {"http", "https"}:
        raise UnsafeUrl("only http:// and https:// URLs are allowed")
    if not parts.hostname:
        raise UnsafeUrl("the URL has no host")
    if parts.username or parts.password:
        raise UnsafeUrl("credentials in the URL are not allowed; verify our signature instead")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return WebhookTarget(
        scheme=parts.scheme,
        host=parts.hostname.lower().rstrip("."),
        port=port or (443 if parts.scheme == "https" else 80),
        path=path,
    )


def is_allowed_address(address: IPAddress, *, allow_loopback: bool) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address.is_loopback:
        return allow_loopback
    return address.is_global and not address.is_multicast


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


async def resolve_safely(
    target: WebhookTarget, resolver: Resolver, *, allow_loopback: bool
) -> list[IPAddress]:
    """The addresses to connect to; raises :class:`UnsafeUrl` if any of them is refused."""
    if target.host in BLOCKED_HOSTNAMES and not (allow_loopback and target.host == "localhost"):
        raise UnsafeUrl(f"{target.host} is an internal host name")
    literal = _literal(target.host)
    if literal is not None:
        addresses = [literal]
    else:
        try:
            addresses = await resolver.resolve(target.host, target.port)
        except OSError as exc:
            raise UnsafeUrl(f"{target.host} does not resolve") from exc
    if not addresses:
        raise UnsafeUrl(f"{target.host} does not resolve")
    # Every address must be allowed: a name with one public and one private address could be
    # answered either way on the next lookup.
    for address in addresses:
        if not is_allowed_address(address, allow_loopback=allow_loopback):
            raise UnsafeUrl(f"{target.host} resolves to a non-public address ({address})")
    return addresses
