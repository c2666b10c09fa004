"""The platform started exactly as docker-compose.yml starts it: every process through the
image's entrypoint with the command and the environment compose gives it, in production, with
every secret read from the files deploy/generate-secrets.sh writes; migrations as a separate step;
the services as least-privileged database roles; Caddy with the production Caddyfile (HTTPS) in
front. Then a partner's first evening through the gateway — register, log in, create an API key,
create a shipment, print its label, the carrier's scan, the recipient's e-mail — an access request,
and the key rotations of docs/operations.md.

Only what differs between a compose network and this machine is changed (``HOST_SPECIFIC``):
addresses and ports, directories, the Redis and (on SQLite) database URLs. On PostgreSQL
(``TEST_DATABASE_URL``) the database is a fresh one of this test's own, set up by the init script
the compose file mounts into the postgres container; on SQLite each service gets its own file.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import create_async_engine

from services.shipping_api.carriers.signatures import SIGNATURE_HEADER, sign
from tests.deploy.compose_env import environment
from tests.deploy.conftest import DEPLOY, ROOT
from tests.deploy.test_entrypoint import _healthcheck
from tests.support.db import POSTGRES_URL
from tests.support.identity_app import PASSWORD, account_body, link_token
from tests.support.shipping_factories import shipment_body
from tests.support.smtp import Inbox, free_port

pytestmark = pytest.mark.e2e

SERVICES = ("identity", "shipping", "privacy")
ENTRYPOINT = DEPLOY / "docker" / "entrypoint.sh"
IMAGE_ROOT = "/app/"
# This test's own Redis database: it is emptied at the start (rate limits of earlier runs).
REDIS_URL = os.environ.get("REDIS_TEST_URL", "redis://127.0.0.1:6379/5")
JOBS = (
    "shipping-purge",
    "identity-purge-expired",
    "identity-purge-request-log",
    "shipping-purge-request-log",
    "privacy-purge-request-log",
    "privacy-deadlines",
)
HOST_SPECIFIC = {
    # container addresses -> this machine's
    "IDENTITY_URL",
    "SHIPPING_URL",
    "PRIVACY_URL",
    "TRUSTED_PROXIES",
    "IDENTITY_UPSTREAM",
    "SHIPPING_UPSTREAM",
    "PRIVACY_UPSTREAM",
    # volumes -> directories of this test
    "PRIVACY_EXPORT_DIR",
    # the compose network's Redis (with its password) -> this test's Redis database
    "REDIS_URL_FILE",
}


@dataclass
class Database:
    """Where the stack's data lives: the generated secrets, and on SQLite the files' URLs."""

    secrets: Path
    sqlite_urls: dict[str, str] | None = None
    role_prefix: str = ""

    def url_of(self, service: str, *, migration: bool = False) -> str:
        if self.sqlite_urls is not None:
            return self.sqlite_urls[service]
        kind = "migration_database_url" if migration else "database_url"
        return (self.secrets / f"{service}_{kind}").read_text().strip()


def _psql(admin: dict[str, str], sql: str) -> None:
    subprocess.run(
        ["psql", "-v", "ON_ERROR_STOP=1", "-q", "-d", "postgres", "-c", sql],
        env={**os.environ, **admin},
        check=True,
        capture_output=True,
        timeout=60,
    )


def _generate_secrets(directory: Path, **env: str) -> None:
    subprocess.run(
        [str(DEPLOY / "generate-secrets.sh"), str(directory)],
        env={**os.environ, **env},
        check=True,
        capture_output=True,
        timeout=60,
    )


@pytest.fixture(params=["postgresql", "sqlite"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    secrets = tmp_path / "secrets"
    if request.param == "sqlite":
        _generate_secrets(secrets)
        yield Database(
            secrets, {s: f"sqlite+aiosqlite:///{tmp_path / f'{s}.db'}" for s in SERVICES}
        )
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
    _generate_secrets(
        secrets,
        PARCELPRO_DB_HOST=admin["PGHOST"],
        PARCELPRO_DB_PORT=admin["PGPORT"],
        PARCELPRO_DB_NAME=name,
        PARCELPRO_ROLE_PREFIX=prefix,
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
        yield Database(secrets, role_prefix=prefix)
    finally:
        _psql(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        for service in SERVICES:
            for role in ("owner", "app"):
                _psql(admin, f'DROP ROLE IF EXISTS "{prefix}{service}_{role}"')


@dataclass
class Stack:
    base: Path
    compose: dict[str, Any]
    database: Database
    operator: dict[str, str]
    """What the operator exports before ``docker compose up`` (DOMAIN, SMTP_URL ...)."""
    ports: dict[str, int]
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    # -- what compose gives a container, moved to this machine --------------------------------

    def _file(self, name: str, value: str) -> str:
        """A file the processes read at start; every ``env_for`` call writes it again.

        Replaced whole and only when its contents change: a process starting while the next
        one's environment is prepared must never read it half-written (an emptied URL file
        once made a service open a database path that does not exist).
        """
        directory = self.base / "host"
        directory.mkdir(exist_ok=True)
        path = directory / name
        contents = value + "\n"
        if not path.exists() or path.read_text() != contents:
            staged = directory / f".{name}.new"
            staged.write_text(contents)
            staged.replace(path)
        return str(path)

    def _host_specific(self, service: str, env: dict[str, str]) -> dict[str, str]:
        host: dict[str, str] = {
            "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
            "HOME": str(self.base),
            # The image's ENV: where a service may write; services listen on loopback here.
            "VAR_DIR": str(self.base / "var" / service),
            "TRUSTED_PROXIES": "127.0.0.1/32",
            "REDIS_URL_FILE": self._file("redis_url", REDIS_URL),
            "PRIVACY_EXPORT_DIR": str(self.base / "privacy-exports"),
        }
        for name in SERVICES:
            port = str(self.ports[name])
            host[f"{name.upper()}_URL"] = f"http://127.0.0.1:{port}"
            host[f"{name.upper()}_UPSTREAM"] = f"127.0.0.1:{port}"
            host[f"{name.upper()}_HOST"] = "127.0.0.1"
            host[f"{name.upper()}_PORT"] = port
            if self.database.sqlite_urls is not None and f"{name.upper()}_DATABASE_URL_FILE" in env:
                migration = env[f"{name.upper()}_DATABASE_URL_FILE"].endswith(
                    "migration_database_url"
                )
                host[f"{name.upper()}_DATABASE_URL_FILE"] = self._file(
                    f"{name}_database_url", self.database.url_of(name, migration=migration)
                )
        if service == "gateway":
            host |= {
                "HTTPS_PORT": str(self.ports["https"]),
                "HTTP_PORT": str(self.ports["http"]),
                "GATEWAY_HEALTH_PORT": str(self.ports["health"]),
                "XDG_DATA_HOME": str(self.base / "caddy-data"),
                "XDG_CONFIG_HOME": str(self.base / "caddy-config"),
            }
        return host

    def env_for(self, service: str) -> dict[str, str]:
        env = environment(self.compose, service, self.database.secrets, self.operator)
        host = self._host_specific(service, env)
        changed = {key for key in host if key in env and host[key] != env[key]}
        sqlite_urls = {f"{s.upper()}_DATABASE_URL_FILE" for s in SERVICES}
        allowed = HOST_SPECIFIC | (sqlite_urls if self.database.sqlite_urls is not None else set())
        assert changed <= allowed, f"{service}: the test would change {changed - allowed}"
        if service != "gateway":
            assert env["ENVIRONMENT"] == "production", service
        return {**env, **host}

    def command_of(self, service: str) -> list[str]:
        args = [str(a) for a in self.compose["services"][service]["command"]]
        return [
            str(ROOT / a.removeprefix(IMAGE_ROOT)) if a.startswith(IMAGE_ROOT) else a for a in args
        ]

    # -- processes ---------------------------------------------------------------------------

    def run(self, service: str, *command: str) -> str:
        """``docker compose run --rm <service> [command]``: a one-shot container."""
        args = list(command) or self.command_of(service)
        result = subprocess.run(
            [str(ENTRYPOINT), *args],
            cwd=ROOT,
            env=self.env_for(service),
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        assert result.returncode == 0, (
            f"{service} {args}: {result.stdout[-2000:]}{result.stderr[-3000:]}"
        )
        return result.stdout

    def start(self, service: str) -> None:
        with (self.base / f"{service}.log").open("ab") as log:
            self.processes[service] = subprocess.Popen(
                [str(ENTRYPOINT), *self.command_of(service)],
                cwd=ROOT,
                env=self.env_for(service),
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def stop(self, service: str) -> None:
        process = self.processes.pop(service)
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)

    def stop_all(self) -> None:
        for service in list(self.processes):
            self.stop(service)

    def log(self, service: str) -> str:
        return (self.base / f"{service}.log").read_text(errors="replace")

    def health_url(self, service: str) -> str:
        """Where the image's HEALTHCHECK looks for this container's command."""
        url = _healthcheck().health_url(
            [str(ENTRYPOINT), *self.command_of(service)], self.env_for(service)
        )
        assert url is not None, service
        return str(url)

    def wait_for(self, service: str, url: str, *, timeout: float = 60.0) -> httpx.Response:
        deadline = time.monotonic() + timeout
        with httpx.Client(timeout=2.0, verify=False) as client:  # noqa: S501 - local CA
            while time.monotonic() < deadline:
                if self.processes[service].poll() is not None:
                    raise AssertionError(f"{service} exited:\n{self.log(service)[-3000:]}")
                try:
                    response = client.get(url)
                    if response.status_code == 200:
                        return response
                except httpx.TransportError:
                    pass
                time.sleep(0.1)
        raise AssertionError(f"{service} not ready at {url}:\n{self.log(service)[-3000:]}")

    @property
    def gateway(self) -> str:
        return f"https://localhost:{self.ports['https']}"


@pytest.fixture
def stack(
    compose: dict[str, Any], database: Database, tmp_path: Path, smtp: tuple[str, Inbox]
) -> Iterator[Stack]:
    try:
        redis.Redis.from_url(REDIS_URL).flushdb()
    except redis.ConnectionError:
        pytest.skip(f"Redis is not running at {REDIS_URL}")
    ports = {name: free_port() for name in (*SERVICES, "https", "http", "health")}
    stack = Stack(
        base=tmp_path,
        compose=compose,
        database=database,
        operator={
            "DOMAIN": "localhost",
            "ACME_EMAIL": "ops@parcelpro.example",
            "SMTP_URL": smtp[0],
            "LOG_LEVEL": "INFO",
        },
        ports=ports,
    )
    try:
        yield stack
    finally:
        stack.stop_all()


# -- helpers -------------------------------------------------------------------------------------


def _metrics(url: str) -> dict[str, float]:
    body = httpx.get(url).text
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


def _until(check: Any, *, within: float = 30.0, what: str = "") -> Any:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"not within {within}s: {what}")


def _mails_to(inbox: Inbox, address: str, *, count: int = 1) -> list[Any]:
    return list(
        _until(
            lambda: len(inbox.to(address)) >= count and inbox.to(address), what=f"mail to {address}"
        )
    )


def _json_lines(log: str) -> list[dict[str, Any]]:
    lines = []
    for line in log.splitlines():
        try:
            value = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        if isinstance(value, dict):
            lines.append(value)
    return lines


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# -- the test ------------------------------------------------------------------------------------


def test_the_containers_commands_bring_the_platform_up_and_it_serves_a_partner(
    stack: Stack, database: Database, smtp: tuple[str, Inbox]
) -> None:
    _, inbox = smtp
    # 1. The one-shot migration step, as the schema owners.
    stack.run("migrate")

    # 2. The services, their workers and the gateway, as compose starts them.
    for service in (*SERVICES, "privacy-worker", "shipping-outbox", "gateway"):
        stack.start(service)
    for service in SERVICES:
        ready = stack.wait_for(service, stack.health_url(service))
        assert ready.json() == {"status": "ready", "service": service}
    stack.wait_for("gateway", stack.health_url("gateway"))

    # 3. The scheduled jobs run with the services' own credentials and secrets.
    with ThreadPoolExecutor(max_workers=3) as pool:
        outputs = dict(zip(JOBS, pool.map(stack.run, JOBS), strict=True))
    assert any(
        line.get("event") == "deadlines_done" for line in _json_lines(outputs["privacy-deadlines"])
    )
    assert set(json.loads(outputs["identity-purge-expired"])) >= {"accounts", "refresh_tokens"}

    # 4. On PostgreSQL a service can neither read another's schema nor change its own.
    if database.role_prefix:
        assert asyncio.run(
            _denied(database.url_of("shipping"), "SELECT count(*) FROM identity.request_log")
        )
        assert asyncio.run(
            _denied(database.url_of("identity"), "CREATE TABLE identity.sneaky (id int)")
        )
        assert asyncio.run(_denied(database.url_of("privacy"), "DELETE FROM shipping.request_log"))

    _the_gateway_answers_like_production(stack)
    account, headers, key, shipment = _a_partners_first_evening(stack, inbox)
    _an_access_request_completes_across_the_services(stack, inbox, account, headers)
    _every_service_reports_its_queues(stack)
    _the_webhook_secret_key_rotates(stack, headers)
    _the_signing_key_rotates_without_logging_anyone_out(stack, headers)
    _the_field_encryption_key_rotates(stack, account, key, shipment)
    # The long-running workers kept running through all of it.
    for worker in ("privacy-worker", "shipping-outbox"):
        assert stack.processes[worker].poll() is None, stack.log(worker)[-3000:]


def _the_gateway_answers_like_production(stack: Stack) -> None:
    """HTTPS for the domain, HSTS, the routes, nothing internal."""
    base = stack.gateway
    with httpx.Client(verify=False, timeout=10) as client:  # noqa: S501 - Caddy's local CA
        healthz = client.get(f"{base}/healthz")
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
        redirect = client.get(
            f"http://localhost:{stack.ports['http']}/v1/shipments", follow_redirects=False
        )
        assert redirect.status_code in {301, 308}
        # In production HTTPS is on 443, so the redirect names no port.
        assert redirect.headers["location"].startswith("https://localhost")
        assert redirect.headers["location"].endswith("/v1/shipments")


def _a_partners_first_evening(
    stack: Stack, inbox: Inbox
) -> tuple[dict[str, Any], dict[str, str], str, dict[str, Any]]:
    """Register, log in, create an API key, create a shipment with it, print the label, the
    carrier's scan, the recipient's e-mail: every service client secret and key at work."""
    body = account_body()
    with httpx.Client(base_url=stack.gateway, verify=False, timeout=30) as client:  # noqa: S501
        registered = client.post("/v1/auth/register", json=body)
        assert registered.status_code == 201, registered.text
        account: dict[str, Any] = registered.json()
        # identity's mail outbox, over SMTP: the e-mail confirmation, whose link the partner
        # follows (privacy mails only confirmed addresses).
        [confirmation] = _mails_to(inbox, body["email"])
        confirmed = client.post(
            "/v1/auth/verify-email", json={"token": link_token(Inbox.body(confirmation))}
        )
        assert confirmed.status_code == 204, confirmed.text

        login = client.post(
            "/v1/auth/token",
            data={
                "grant_type": "password",
                "username": body["email"],
                "password": body["password"],
            },
        )
        assert login.status_code == 200, login.text
        headers = _bearer(login.json()["access_token"])

        created_key = client.post(
            "/v1/api-keys",
            json={
                "name": "Webshop",
                "scopes": ["shipments:read", "shipments:write"],
                "mode": "live",
            },
            headers=headers,
        )
        assert created_key.status_code == 201, created_key.text
        key: str = created_key.json()["key"]

        # shipping checks the key at identity's introspection with its own client secret.
        created = client.post("/v1/shipments", json=shipment_body(), headers=_bearer(key))
        assert created.status_code == 201, created.text
        shipment: dict[str, Any] = created.json()
        assert shipment["status"] == "created"
        listed = client.get("/v1/shipments", headers=_bearer(key))
        assert [s["id"] for s in listed.json()["data"]] == [shipment["id"]]
        # The label names the sender: shipping reads it from identity (internal:accounts.read).
        label = client.get(f"/v1/shipments/{shipment['id']}/label?format=pdf", headers=_bearer(key))
        assert label.status_code == 200, label.text
        assert label.content.startswith(b"%PDF")

        # The carrier's scan, signed with the secret generated for it.
        carriers = json.loads((stack.database.secrets / "shipping_carrier_secrets").read_text())
        event = orjson.dumps(
            {
                "event_id": "scan-1",
                "tracking_code": shipment["tracking_code"],
                "status": "handed_to_carrier",
                "occurred_at": datetime.now(UTC).isoformat(),
                "city": "Nieuwegein",
            }
        )
        scanned = client.post(
            "/v1/carriers/postnl/events",
            content=event,
            headers={
                "Content-Type": "application/json",
                SIGNATURE_HEADER: sign(carriers["postnl"], event),
            },
        )
        assert scanned.status_code == 200, scanned.text
        assert scanned.json()["shipment_status"] == "handed_to_carrier"
    # The recipient's e-mail goes out from the shipping-outbox worker (the API's is off).
    _mails_to(inbox, shipment_body()["recipient"]["email"])
    # The worker logs its pass after the mail has gone and been marked sent, and its log lines
    # reach the file within 50 ms: the line may come a moment after the mail.
    deadline = time.monotonic() + 10
    while True:
        drained = [
            line
            for line in _json_lines(stack.log("shipping-outbox"))
            if line.get("event") == "outbox_drained"
        ]
        if any(line["tried"] >= 1 for line in drained) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert any(line["tried"] >= 1 for line in drained)
    return account, headers, key, shipment


def _an_access_request_completes_across_the_services(
    stack: Stack, inbox: Inbox, account: dict[str, Any], headers: dict[str, str]
) -> None:
    """privacy calls identity's and shipping's subject API with its own client secret; the
    export is written by a worker and downloaded through the API from the shared directory."""
    with httpx.Client(base_url=stack.gateway, verify=False, timeout=30) as client:  # noqa: S501
        created = client.post("/v1/privacy/requests", json={"type": "access"}, headers=headers)
        assert created.status_code == 201, created.text
        request_id = created.json()["id"]

        def completed() -> dict[str, Any] | None:
            state: dict[str, Any] = client.get(
                f"/v1/privacy/requests/{request_id}", headers=headers
            ).json()
            assert state["status"] not in {"failed", "rejected"}, state
            return state if state["status"] == "completed" else None

        _until(completed, what="the access request to complete")
        export = client.get(f"/v1/privacy/requests/{request_id}/export", headers=headers)
        assert export.status_code == 200, export.text
    with zipfile.ZipFile(io.BytesIO(export.content)) as archive:
        accounts = orjson.loads(archive.read("identity/account.json"))
        shipments = orjson.loads(archive.read("shipping/shipments.json"))
    assert [a["iban"] for a in accounts] == ["NL91ABNA0417164300"]
    assert [row["reference"] for row in shipments if row["_table"] == "shipments"] == ["ORDER-1001"]
    # The subject is told, with where to download the export.
    link = f"/v1/privacy/requests/{request_id}/export"
    _until(
        lambda: any(link in Inbox.body(m) for m in inbox.to(account["email"])),
        what="the completion mail",
    )


def _every_service_reports_its_queues(stack: Stack) -> None:
    expected = {
        "identity": ["outbox_backlog[('outbox', 'mail')]"],
        "shipping": [
            "outbox_backlog[('outbox', 'webhooks')]",
            "outbox_backlog[('outbox', 'recipient_mail')]",
        ],
        "privacy": ["outbox_backlog[('outbox', 'mail')]", "privacy_task_oldest_due_seconds[]"],
    }
    for service, gauges in expected.items():
        samples = _metrics(f"http://127.0.0.1:{stack.ports[service]}/metrics")
        key = "parcelpro_service_info[('service', '{}'), ('version', '0.1.0')]"
        assert samples[key.format(service)] == 1
        assert "db_pool_connections[('state', 'in_use')]" in samples
        # The gauges' queries work with the service's own (app role) rights.
        for gauge in gauges:
            assert gauge in samples, (service, gauge)
        errors = [v for k, v in samples.items() if k.startswith("database_gauge_errors_total")]
        assert errors, service
        assert not any(errors), service


def _the_signing_key_rotates_without_logging_anyone_out(
    stack: Stack, headers: dict[str, str]
) -> None:
    rotated = json.loads(stack.run("identity", "identity", "rotate-signing-key"))
    with httpx.Client(base_url=stack.gateway, verify=False, timeout=30) as client:  # noqa: S501
        jwks = client.get("/.well-known/jwks.json").json()
        # Published at once, signing only after other services' JWKS caches caught up.
        assert rotated["kid"] in {k["kid"] for k in jwks["keys"]}
        assert len(jwks["keys"]) == 2
        assert client.get("/v1/accounts/me", headers=headers).status_code == 200


def _the_field_encryption_key_rotates(
    stack: Stack, account: dict[str, Any], key: str, shipment: dict[str, Any]
) -> None:
    """docs/operations.md: add a key, make it the active one, re-encrypt, retire the old one."""
    secrets = stack.database.secrets
    keys_file = secrets / "identity_field_encryption_keys"
    active_file = secrets / "identity_field_encryption_active_key"
    old_kid = active_file.read_text().strip()
    new_kid = f"{old_kid}-2"
    keys = json.loads(keys_file.read_text())
    keys[new_kid] = base64.b64encode(os.urandom(32)).decode()
    keys_file.write_text(json.dumps(keys) + "\n")
    active_file.write_text(new_kid + "\n")
    _restart(stack, "identity")

    counts = json.loads(stack.run("identity", "identity", "reencrypt-fields"))
    assert counts == {"accounts.iban": 1, "signing_keys.private_key": 2}

    del keys[old_kid]
    keys_file.write_text(json.dumps(keys) + "\n")
    _restart(stack, "identity")
    with httpx.Client(base_url=stack.gateway, verify=False, timeout=30) as client:  # noqa: S501
        # Only the new key is left: the signing keys and the IBAN open with it.
        login = client.post(
            "/v1/auth/token",
            data={
                "grant_type": "password",
                "username": account["email"],
                "password": PASSWORD,
            },
        )
        assert login.status_code == 200, login.text
        me = client.get("/v1/accounts/me", headers=_bearer(login.json()["access_token"]))
        assert me.json()["iban"] == "NL91ABNA0417164300"
        # API keys are hashed with the hash key, which did not change.
        listed = client.get("/v1/shipments", headers=_bearer(key))
        assert [s["id"] for s in listed.json()["data"]] == [shipment["id"]]


def _the_webhook_secret_key_rotates(stack: Stack, headers: dict[str, str]) -> None:
    """docs/operations.md: the new key listed as a previous one and swapped in (one restart, as
    in compose), the secrets re-sealed, the old key dropped; the endpoint stays as it was."""
    with httpx.Client(base_url=stack.gateway, verify=False, timeout=30) as client:  # noqa: S501
        created = client.post(
            "/v1/webhook-endpoints",
            json={"url": "https://hooks.example.nl/parcelpro", "events": ["shipment.delivered"]},
            headers=headers,
        )
        assert created.status_code == 201, created.text
    secrets = stack.database.secrets
    key_file = secrets / "shipping_webhook_secret_key"
    previous_file = secrets / "shipping_webhook_secret_previous_keys"
    assert json.loads(previous_file.read_text()) == []
    old = key_file.read_text().strip()
    key_file.write_text(base64.urlsafe_b64encode(os.urandom(32)).decode() + "\n")
    previous_file.write_text(json.dumps([old]) + "\n")
    _restart(stack, "shipping")
    _restart_worker(stack, "shipping-outbox", "outbox_drained")

    resealed = _json_lines(stack.run("shipping", "shipping", "reseal-webhook-secrets"))[-1]
    assert (resealed["resealed"], resealed["unreadable"]) == (1, 0), resealed
    again = _json_lines(stack.run("shipping", "shipping", "reseal-webhook-secrets"))[-1]
    assert (again["resealed"], again["current"]) == (0, 1), again

    previous_file.write_text("[]\n")
    _restart(stack, "shipping")
    _restart_worker(stack, "shipping-outbox", "outbox_drained")
    with httpx.Client(base_url=stack.gateway, verify=False, timeout=30) as client:  # noqa: S501
        endpoint = client.get(f"/v1/webhook-endpoints/{created.json()['id']}", headers=headers)
        assert endpoint.status_code == 200, endpoint.text
        assert endpoint.json()["secret_hint"] == created.json()["secret_hint"]


def _restart(stack: Stack, service: str) -> None:
    stack.stop(service)
    stack.start(service)
    stack.wait_for(service, stack.health_url(service))


def _restart_worker(stack: Stack, service: str, event: str, timeout: float = 60.0) -> None:
    """Restart a process that serves no health URL; up once it logs ``event``."""
    logged = len(stack.log(service))
    stack.stop(service)
    stack.start(service)
    deadline = time.monotonic() + timeout
    while not any(line.get("event") == event for line in _json_lines(stack.log(service)[logged:])):
        assert stack.processes[service].poll() is None, stack.log(service)[logged:][-3000:]
        assert time.monotonic() < deadline, f"{service} logged no {event} within {timeout}s"
        time.sleep(0.2)


def test_compose_names_every_job_this_test_runs(compose: dict[str, Any]) -> None:
    jobs = {name for name, s in compose["services"].items() if "jobs" in s.get("profiles", [])}
    assert jobs == set(JOBS)
