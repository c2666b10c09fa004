"""deploy/gateway/Caddyfile.prod: valid for Caddy, HTTPS from Let's Encrypt, HSTS."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.deploy.conftest import DEPLOY, ROOT

CADDYFILE_PROD = DEPLOY / "gateway" / "Caddyfile.prod"


def validate(**env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in {"DOMAIN", "ACME_EMAIL"}}
    return subprocess.run(
        [sys.executable, "-m", "services.gateway", "validate", "--config", str(CADDYFILE_PROD)],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_caddy_validates_the_production_caddyfile_for_a_domain() -> None:
    result = validate(DOMAIN="api.parcelpro.nl", ACME_EMAIL="ops@parcelpro.nl")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Valid configuration" in result.stdout + result.stderr


def test_the_production_caddyfile_cannot_start_without_a_domain() -> None:
    result = validate(ACME_EMAIL="ops@parcelpro.nl")
    assert result.returncode != 0


def test_certificates_come_from_lets_encrypt_with_hsts_on_the_site() -> None:
    text = CADDYFILE_PROD.read_text()
    assert "auto_https off" not in text
    assert "email {$ACME_EMAIL}" in text
    assert "acme_ca {$ACME_CA:https://acme-v02.api.letsencrypt.org/directory}" in text
    site = text[text.index("{$DOMAIN} {") :]
    assert 'Strict-Transport-Security "max-age=63072000; includeSubDomains"' in site
    assert "import common" in site


def test_the_health_listener_is_bound_to_loopback_only() -> None:
    text = CADDYFILE_PROD.read_text()
    block = text[text.index("http://127.0.0.1:{$GATEWAY_HEALTH_PORT:8081} {") :]
    assert "bind 127.0.0.1" in block
    assert "reverse_proxy" not in block
