"""The platform started exactly as the containers start it: through the image's entrypoint, with
secrets from files, migrations as a separate step, the services as least-privileged database
roles, and Caddy with the production Caddyfile (HTTPS) in front.

On PostgreSQL (``TEST_DATABASE_URL``) the database is a fresh one of this test's own, set up by
the same init script the compose file mounts into the postgres container; on SQLite each service
gets its own file.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import create_async_engine

from tests.deploy.conftest import DEPLOY, ROOT
from tests.deploy.test_entrypoint import _healthcheck
from tests.support.db import POSTGRES_URL
from tests.support.smtp import Inbox, free_port

pytestmark = pytest.mark.e2e

SERVICES = ("identity", "shipping", "privacy")
ENTRYPOINT = DEPLOY / "docker" / "entrypoint.sh"
REDIS_URL = os.environ.get("REDIS_TEST_URL", "redis://127.0.0.1:6379/4")


@dataclass
class Stack:
    base: Path
    env: dict[str, str]
    ports: dict[str, int] = field(default_factory=dict)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def run(self, *args: str, env: dict[str, str] | None = None) -> str:
        result = subprocess.run(
            [str(ENTRYPOINT), *args],
            cwd=ROOT,
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        assert result.returncode == 0, f"{args}: {result.stdout[-2000:]}{result.stderr[-3000:]}"
        return result.stdout

    def start(self, name: str, *args: str, env: dict[str, str] | None = None) -> None:
        with (self.base / f"{name}.log").open("ab") as log:
            self.processes[name] = subprocess.Popen(
                [str(ENTRYPOINT), *args],
                cwd=ROOT,
                env={**self.env, **(env or {})},
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def log(self, name: str) -> str:
        return (self.base / f"{name}.log").read_text(errors="replace")[-3000:]

    def wait_for(self, name: str, url: str, *, timeout: float = 60.0) -> httpx.Response:
        deadline = time.monotonic() + timeout
        with httpx.Client(timeout=2.0, verify=False) as client:  # noqa: S501 - local CA
            while time.monotonic() < deadline:
                if self.processes[name].poll() is not None:
                    raise AssertionError(f"{name} exited:\n{self.log(name)}")
                try:
                    response = client.get(url)
                    if response.status_code == 200:
                        return response
                except httpx.TransportError:
                    pass
                time.sleep(0.1)
        raise AssertionError(f"{name} not ready at {url}:\n{self.log(name)}")

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)


def _psql(admin: dict[str, str], sql: str) -> None:
    subprocess.run(
        ["psql", "-v", "ON_ERROR_STOP=1", "-q", "-d", "postgres", "-c", sql],
        env={**os.environ, **admin},
        check=True,
        capture_output=True,
        timeout=60,
    )


@dataclass
class Database:
    """Where the stack's data lives, and the URLs the migration step and the services use."""

    migration_urls: dict[str, str]
    app_urls: dict[str, str]
    role_prefix: str = ""


@pytest.fixture(params=["postgresql", "sqlite"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    secrets = tmp_path / "secrets"
    if request.param == "sqlite":
        urls = {s: f"sqlite+aiosqlite:///{tmp_path / f'{s}.db'}" for s in SERVICES}
        yield Database(urls, urls)
        return
    if not POSTGRES_URL:
        pytest.skip("PostgreSQL not configured (TEST_DATABASE_URL)")
    if shutil.which("psql") is None:
        pytest.skip("psql (the init script's client) is not installed")
    url = make_url(POSTGRES_URL)
    name = f"{url.database}_deploy"
    prefix = f"{url.database}_"
    admin = {
        "PGHOST": url.host or "127.0.0.1",
        "PGPORT": str(url.port or 5432),
        "PGUSER": url.username or "postgres",
        **({"PGPASSWORD": url.password} if url.password else {}),
    }
    _psql(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    _psql(admin, f'CREATE DATABASE "{name}"')
    subprocess.run(
        [str(DEPLOY / "generate-secrets.sh"), str(secrets)],
        env={
            **os.environ,
            "PARCELPRO_DB_HOST": admin["PGHOST"],
            "PARCELPRO_DB_PORT": admin["PGPORT"],
            "PARCELPRO_DB_NAME": name,
            "PARCELPRO_ROLE_PREFIX": prefix,
        },
        check=True,
        capture_output=True,
        timeout=60,
    )
    # Exactly what the postgres container runs on its first start.
    passwords = {
        f"{s.upper()}_{role.upper()}_PASSWORD_FILE": str(secrets / f"{s}_{role}_password")
        for s in SERVICES
        for role in ("owner", "app")
    }
    init = subprocess.run(
        [str(DEPLOY / "postgres" / "10-parcelpro-roles.sh")],
        env={
            **os.environ,
            **admin,
            **passwords,
            "POSTGRES_USER": admin["PGUSER"],
            "POSTGRES_DB": name,
            "PARCELPRO_ROLE_PREFIX": prefix,
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert init.returncode == 0, init.stderr
    try:
        yield Database(
            {s: (secrets / f"{s}_migration_database_url").read_text().strip() for s in SERVICES},
            {s: (secrets / f"{s}_database_url").read_text().strip() for s in SERVICES},
            prefix,
        )
    finally:
        _psql(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        for service in SERVICES:
            for role in ("owner", "app"):
                _psql(admin, f'DROP ROLE IF EXISTS "{prefix}{service}_{role}"')


def _write(directory: Path, name: str, value: str) -> str:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(value + "\n")
    return str(path)


@pytest.fixture
def stack(database: Database, tmp_path: Path, smtp: tuple[str, Inbox]) -> Iterator[Stack]:
    files = tmp_path / "run-secrets"
    ports = {name: free_port() for name in (*SERVICES, "https", "http", "health")}
    env = {
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "HOME": str(tmp_path),
        "ENVIRONMENT": "production",
        "LOG_LEVEL": "INFO",
        "VAR_DIR": str(tmp_path / "var"),
        "DOCS_ENABLED": "false",
        "TRUSTED_PROXIES": "127.0.0.1/32",
        "PUBLIC_BASE_URL": f"https://localhost:{ports['https']}",
        "SMTP_URL": smtp[0],
        "REDIS_URL_FILE": _write(files, "redis_url", REDIS_URL),
        "IDENTITY_SERVICE_CLIENTS_FILE": _write(
            files, "identity_service_clients", '{"shipping_api": "s", "privacy_api": "p"}'
        ),
        "IDENTITY_FIELD_ENCRYPTION_KEYS_FILE": _write(
            files, "identity_field_encryption_keys", "k1:bm90LWEtcmVhbC1rZXktbm90LWEtcmVhbC1rZXk"
        ),
        "SHIPPING_BLIND_INDEX_KEY_FILE": _write(files, "shipping_blind_index_key", "blind"),
        "SHIPPING_CARRIER_SECRETS_FILE": _write(files, "carrier", '{"sandbox": "c"}'),
    }
    for service in SERVICES:
        prefix = service.upper()
        env[f"{service.upper()}_URL"] = f"http://127.0.0.1:{ports[service]}"
        env[f"{prefix}_HOST"] = "127.0.0.1"
        env[f"{prefix}_PORT"] = str(ports[service])
        env[f"{prefix}_SERVICE_CLIENT_SECRET_FILE"] = _write(
            files, f"{service}_client", f"secret-of-{service}"
        )
    stack = Stack(base=tmp_path, env=env, ports=ports)
    try:
        yield stack
    finally:
        stack.stop()


def _url_files(stack: Stack, urls: dict[str, str], kind: str) -> dict[str, str]:
    return {
        f"{s.upper()}_DATABASE_URL_FILE": _write(stack.base / kind, f"{s}_url", urls[s])
        for s in SERVICES
    }


def _metrics(body: str) -> dict[str, float]:
    return {
        f"{sample.name}{sorted(sample.labels.items())}": sample.value
        for family in text_string_to_metric_families(body)
        for sample in family.samples
    }


async def _denied(url: str, statement: str) -> bool:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            await conn.execute(text(statement))
    except DBAPIError as exc:
        return "permission denied" in str(exc)
    finally:
        await engine.dispose()
    return False


def test_the_containers_commands_bring_the_platform_up(stack: Stack, database: Database) -> None:
    # 1. The one-shot migration step, as the schema owners.
    stack.run("migrate", env=_url_files(stack, database.migration_urls, "migration"))

    # 2. The services, as their app roles, exactly as the container command starts them.
    app_urls = _url_files(stack, database.app_urls, "app")
    for service in SERVICES:
        stack.start(service, service, "serve", "--no-migrate", env=app_urls)
    health = _healthcheck()
    for service in SERVICES:
        args = [str(ENTRYPOINT), service, "serve", "--no-migrate"]
        url = health.health_url(args, stack.env)
        ready = stack.wait_for(service, url)
        assert ready.json() == {"status": "ready", "service": service}
        metrics = httpx.get(f"http://127.0.0.1:{stack.ports[service]}/metrics")
        assert metrics.status_code == 200
        samples = _metrics(metrics.text)
        key = "parcelpro_service_info[('service', '{}'), ('version', '0.1.0')]"
        assert samples[key.format(service)] == 1
        assert (
            samples[
                "http_requests_total[('method', 'GET'), ('route', '/readyz'), ('status', '200')]"
            ]
            >= 1
        )
        assert "db_pool_connections[('state', 'in_use')]" in samples

    # 3. The scheduled request-log expiry runs with the services' own credentials.
    for service in SERVICES:
        stack.run(service, "purge-request-log", env=app_urls)

    # 4. On PostgreSQL a service can neither read another's schema nor change its own.
    if database.role_prefix:
        assert asyncio.run(
            _denied(database.app_urls["shipping"], "SELECT count(*) FROM identity.request_log")
        )
        assert asyncio.run(
            _denied(database.app_urls["identity"], "CREATE TABLE identity.sneaky (id int)")
        )
        assert asyncio.run(
            _denied(database.app_urls["privacy"], "DELETE FROM shipping.request_log")
        )

    # 5. The gateway with the production Caddyfile: HTTPS for the domain, HSTS, same routes.
    https, http, health_port = stack.ports["https"], stack.ports["http"], stack.ports["health"]
    gateway_args = ["gateway", "run", "--config", "deploy/gateway/Caddyfile.prod"]
    stack.start(
        "gateway",
        *gateway_args,
        env={
            "DOMAIN": "localhost",
            "ACME_EMAIL": "ops@parcelpro.example",
            "HTTPS_PORT": str(https),
            "HTTP_PORT": str(http),
            "GATEWAY_HEALTH_PORT": str(health_port),
            "XDG_DATA_HOME": str(stack.base / "caddy-data"),
            "XDG_CONFIG_HOME": str(stack.base / "caddy-config"),
            **{f"{s.upper()}_UPSTREAM": f"127.0.0.1:{stack.ports[s]}" for s in SERVICES},
        },
    )
    gateway_health = health.health_url(
        [str(ENTRYPOINT), *gateway_args], {"GATEWAY_HEALTH_PORT": str(health_port)}
    )
    stack.wait_for("gateway", gateway_health)
    base = f"https://localhost:{https}"
    with httpx.Client(verify=False, timeout=10) as client:  # noqa: S501 - Caddy's local CA
        healthz = stack.wait_for("gateway", f"{base}/healthz")
        assert healthz.json() == {"status": "ok", "service": "gateway"}
        assert healthz.headers["strict-transport-security"].startswith("max-age=63072000")
        assert healthz.headers["x-content-type-options"] == "nosniff"
        for path in ("/internal/v1/subjects/export", "/metrics", "/readyz"):
            answer = client.get(f"{base}{path}")
            assert answer.status_code == 404
            assert "request_id" not in answer.json(), "the gateway itself must answer"
        # A routed prefix reaches its service (which answers with its own problem document).
        routed = client.get(f"{base}/v1/privacy/no-such-resource", headers={"X-Request-ID": "r-1"})
        assert routed.status_code == 404
        assert routed.json()["request_id"] == "r-1"
        assert client.get(f"{base}/openapi.json").json()["openapi"].startswith("3.")
        redirect = client.get(f"http://localhost:{http}/v1/shipments", follow_redirects=False)
        assert redirect.status_code in {301, 308}
        # In production HTTPS is on 443, so the redirect names no port.
        assert redirect.headers["location"].startswith("https://localhost")
        assert redirect.headers["location"].endswith("/v1/shipments")
