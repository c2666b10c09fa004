"""The gateway's Caddyfiles are valid Caddy configuration, logging what they should."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from services.gateway.__main__ import caddy_binary

ROOT = Path(__file__).resolve().parents[2]


def test_caddyfile_validates() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "services.gateway", "validate"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Valid configuration" in result.stdout + result.stderr


@pytest.mark.parametrize("name", ["Caddyfile", "Caddyfile.prod"])
def test_only_the_reverse_proxys_own_logger_is_left_out_of_the_gateways_log(name: str) -> None:
    """The reverse proxy builds a debug entry for every proxied request (decision 0709); the
    rest of Caddy's log (the server's, the transport's, start-up and shutdown) stays."""
    result = subprocess.run(
        [caddy_binary(), "adapt", "--config", str(ROOT / "deploy" / "gateway" / name)],
        cwd=ROOT,
        env={**os.environ, "DOMAIN": "api.parcelpro.nl", "ACME_EMAIL": "ops@parcelpro.nl"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    logs = json.loads(result.stdout)["logging"]["logs"]
    assert logs == {"default": {"exclude": ["http.handlers.reverse_proxy"]}}
