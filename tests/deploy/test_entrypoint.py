"""The image's entrypoint (secrets from files, role dispatch) and its health check."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from tests.deploy.conftest import DEPLOY, ROOT

ENTRYPOINT = DEPLOY / "docker" / "entrypoint.sh"


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    base = {
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "HOME": os.environ.get("HOME", "/tmp"),
    }
    return subprocess.run(
        [str(ENTRYPOINT), *args],
        env={**base, **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


PRINT_TOKEN = [
    "python",
    "-c",
    "import os; print(repr(os.environ.get('API_TOKEN')), 'API_TOKEN_FILE' in os.environ)",
]


def test_a_variable_is_read_from_the_file_its_file_variable_names(tmp_path: Path) -> None:
    secret = tmp_path / "api_token"
    secret.write_text("s3cr3t value\n")
    result = run(PRINT_TOKEN, {"API_TOKEN_FILE": str(secret)})
    assert result.returncode == 0, result.stderr
    # The trailing newline of the file is not part of the secret; the _FILE variable is gone.
    assert result.stdout.strip() == "'s3cr3t value' False"


def test_setting_a_variable_and_its_file_is_refused(tmp_path: Path) -> None:
    secret = tmp_path / "api_token"
    secret.write_text("from file")
    result = run(PRINT_TOKEN, {"API_TOKEN_FILE": str(secret), "API_TOKEN": "inline"})
    assert result.returncode == 64
    assert "both API_TOKEN and API_TOKEN_FILE are set" in result.stderr


def test_a_missing_secret_file_stops_the_container(tmp_path: Path) -> None:
    result = run(PRINT_TOKEN, {"API_TOKEN_FILE": str(tmp_path / "missing")})
    assert result.returncode == 66
    assert "not a readable file" in result.stderr


@pytest.mark.parametrize("service", ["identity", "shipping", "privacy"])
def test_a_service_role_runs_that_services_command_line(service: str) -> None:
    result = run([service, "--help"], {})
    assert result.returncode == 0, result.stderr
    assert f"python -m services.{service}_api" in result.stdout
    assert "purge-request-log" in result.stdout


def test_the_gateway_role_runs_the_gateway_launcher() -> None:
    result = run(["gateway", "--help"], {})
    assert result.returncode == 0, result.stderr
    assert "python -m services.gateway" in result.stdout


def test_without_arguments_the_entrypoint_explains_its_roles() -> None:
    result = run([], {})
    assert result.returncode == 0
    assert "identity|shipping|privacy <command>" in result.stdout
    assert "migrate" in result.stdout


def _healthcheck() -> ModuleType:
    spec = importlib.util.spec_from_file_location("healthcheck", DEPLOY / "docker/healthcheck.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("cmdline", "env", "url"),
    [
        # PID 1 is the service itself (exec from the entrypoint) ...
        (["python", "-m", "services.identity_api", "serve"], {}, "http://127.0.0.1:8001/readyz"),
        # ... or docker-init in front of the entrypoint (compose `init: true`).
        (
            ["/sbin/docker-init", "--", "/app/deploy/docker/entrypoint.sh", "shipping", "serve"],
            {},
            "http://127.0.0.1:8002/readyz",
        ),
        (["/e.sh", "privacy", "serve", "--port", "9003"], {}, "http://127.0.0.1:9003/readyz"),
        (["/e.sh", "privacy", "serve"], {"PRIVACY_PORT": "9103"}, "http://127.0.0.1:9103/readyz"),
        (["/e.sh", "gateway"], {}, "http://127.0.0.1:8000/healthz"),
        (
            ["/opt/venv/bin/caddy", "run", "--config", "/app/deploy/gateway/Caddyfile.prod"],
            {},
            "http://127.0.0.1:8081/healthz",
        ),
        (["/e.sh", "gateway", "run"], {"GATEWAY_PORT": "9000"}, "http://127.0.0.1:9000/healthz"),
        # Roles without a port are healthy while they run.
        (["/e.sh", "privacy", "worker"], {}, None),
        (["/e.sh", "migrate"], {}, None),
        (["/e.sh", "shipping", "purge"], {}, None),
        (["/e.sh", "privacy", "worker"], {"HEALTHCHECK_URL": "http://x/h"}, "http://x/h"),
    ],
)
def test_the_health_check_asks_the_process_the_container_runs(
    cmdline: list[str], env: dict[str, str], url: str | None
) -> None:
    assert _healthcheck().health_url(cmdline, env) == url
