"""Docker HEALTHCHECK of the Parcel Pro image: asks the process this container runs.

One image runs every role, so the check reads the container's command line (``/proc/1/cmdline``)
to find the port: a service's ``/readyz`` (database reachable and migrated), the gateway's
``/healthz``. One-shot and background roles (migrate, purge, worker, deadlines) have no HTTP port
and count as healthy while they run. ``HEALTHCHECK_URL`` overrides the detection. Standard
library only: it runs often and must start fast.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path

SERVICE_PORTS = {"identity": 8001, "shipping": 8002, "privacy": 8003}
GATEWAY_PORT = 8000
GATEWAY_HEALTH_PORT = 8081


def _option(args: Sequence[str], name: str) -> str | None:
    for index, arg in enumerate(args):
        if arg == name and index + 1 < len(args):
            return args[index + 1]
        if arg.startswith(f"{name}="):
            return arg.split("=", 1)[1]
    return None


def _service_of(args: Sequence[str]) -> str | None:
    """The service whose ``serve`` command this is, in entrypoint or ``python -m`` form."""
    for index, arg in enumerate(args[:-1]):
        name = arg.removeprefix("services.").removesuffix("_api")
        if name in SERVICE_PORTS and arg in {name, f"services.{name}_api"}:
            return name if args[index + 1] == "serve" else None
    return None


def _is_gateway(args: Sequence[str]) -> bool:
    """Caddy running, started as the entrypoint's ``gateway`` role or directly."""
    for index, arg in enumerate(args):
        if Path(arg).name in {"gateway", "services.gateway", "caddy"}:
            rest = args[index + 1 :]
            return not rest or rest[0] == "run" or rest[0].startswith("-")
    return False


def health_url(args: Sequence[str], env: Mapping[str, str]) -> str | None:
    """The URL that tells whether the process behind ``args`` is healthy, or None if none does."""
    if env.get("HEALTHCHECK_URL"):
        return env["HEALTHCHECK_URL"]
    service = _service_of(args)
    if service is not None:
        port = _option(args, "--port") or env.get(f"{service.upper()}_PORT")
        return f"http://127.0.0.1:{port or SERVICE_PORTS[service]}/readyz"
    if _is_gateway(args):
        config = _option(args, "--config") or ""
        if config.endswith(".prod"):
            # The production site answers HTTPS for its domain only; it has a loopback listener
            # for health checks.
            port = env.get("GATEWAY_HEALTH_PORT") or GATEWAY_HEALTH_PORT
        else:
            port = env.get("GATEWAY_PORT") or GATEWAY_PORT
        return f"http://127.0.0.1:{port}/healthz"
    return None


def main() -> int:
    try:
        raw = Path("/proc/1/cmdline").read_bytes()
    except OSError:
        raw = b""
    args = [part.decode(errors="replace") for part in raw.split(b"\0") if part]
    url = health_url(args, os.environ)
    if url is None:
        return 0
    try:
        with urllib.request.urlopen(url, timeout=3) as response:  # noqa: S310 - loopback URL
            return 0 if response.status == 200 else 1
    except (urllib.error.URLError, OSError) as exc:
        print(f"unhealthy: {url}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
