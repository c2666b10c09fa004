"""deploy/docker-compose.yml: valid, secrets only from files, migrations before the services."""

from __future__ import annotations

import copy
import json
import subprocess
from pathlib import Path
from typing import Any

import jsonschema

from tests.deploy.commands import is_known_command
from tests.deploy.conftest import DEPLOY, ROOT

IMAGE = "${PARCELPRO_IMAGE:-parcelpro:latest}"
SECRET_WORDS = ("PASSWORD", "SECRET", "KEY", "DATABASE_URL", "REDIS_URL", "SMTP")


def app_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: s for name, s in compose["services"].items() if s.get("image") == IMAGE}


def compose_validator() -> jsonschema.Draft201909Validator:
    schema = json.loads((ROOT / "tests/deploy/schemas/compose-spec.json").read_text())
    return jsonschema.Draft201909Validator(schema)


def test_compose_file_is_valid_against_the_compose_specification(
    compose: dict[str, Any],
) -> None:
    compose_validator().validate(compose)


def test_the_schema_catches_a_misspelt_key(compose: dict[str, Any]) -> None:
    broken = copy.deepcopy(compose)
    broken["services"]["identity"]["healthcheck"] = {"intervall": "5s"}
    assert not compose_validator().is_valid(broken)


def test_the_stack_has_gateway_services_worker_database_and_redis(
    compose: dict[str, Any],
) -> None:
    assert {
        "gateway",
        "identity",
        "shipping",
        "privacy",
        "privacy-worker",
        "shipping-outbox",
        "migrate",
        "postgres",
        "redis",
    } <= set(compose["services"])


def test_every_parcelpro_container_runs_the_one_image_hardened(
    compose: dict[str, Any],
) -> None:
    services = app_services(compose)
    assert len(services) >= 8
    for name, service in services.items():
        assert service["build"] == {"context": "..", "dockerfile": "deploy/Dockerfile"}, name
        assert service["user"] == "10001:10001"
        assert service["read_only"] is True
        assert service["cap_drop"] == ["ALL"]
        assert "no-new-privileges:true" in service["security_opt"]
        assert is_known_command(service["command"]), (name, service["command"])


def test_secrets_reach_containers_only_as_mounted_files(compose: dict[str, Any]) -> None:
    declared = compose["secrets"]
    for name, secret in declared.items():
        assert secret == {"file": f"./secrets/{name}"}
    for name, service in compose["services"].items():
        environment = service.get("environment", {})
        mounted = set(service.get("secrets", []))
        for key, value in environment.items():
            if key.endswith("_FILE"):
                secret = Path(value).name
                assert value == f"/run/secrets/{secret}", (name, key)
                assert secret in mounted, (name, key)
                assert secret in declared, (name, key)
            else:
                # Interpolated from the operator's environment at most, never a literal.
                literal = not str(value).startswith("${")
                assert not (literal and any(w in key for w in SECRET_WORDS)), (name, key)
        assert mounted <= set(declared), name


def test_generate_secrets_creates_every_file_compose_mounts(
    compose: dict[str, Any], tmp_path: Path
) -> None:
    subprocess.run(
        [str(DEPLOY / "generate-secrets.sh"), str(tmp_path / "secrets")],
        check=True,
        capture_output=True,
        timeout=60,
    )
    created = {path.name for path in (tmp_path / "secrets").iterdir()}
    assert created == set(compose["secrets"])
    assert (tmp_path / "secrets").stat().st_mode & 0o777 == 0o700


def test_migrations_run_once_before_any_service_starts(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert services["migrate"]["command"] == ["migrate"]
    assert services["migrate"]["restart"] == "no"
    for name in ("identity", "shipping", "privacy", "privacy-worker", "shipping-outbox"):
        assert services[name]["depends_on"]["migrate"] == {
            "condition": "service_completed_successfully"
        }
        assert (
            "--no-migrate" in services[name]["command"] or "serve" not in services[name]["command"]
        )
    # The migration step connects as each schema's owner, the services as their app roles.
    migrate_env = services["migrate"]["environment"]
    for service in ("identity", "shipping", "privacy"):
        key = f"{service.upper()}_DATABASE_URL_FILE"
        assert migrate_env[key] == f"/run/secrets/{service}_migration_database_url"
        assert services[service]["environment"][key] == f"/run/secrets/{service}_database_url"
    for service in ("identity", "shipping", "privacy"):
        assert services["gateway"]["depends_on"][service] == {"condition": "service_healthy"}


def test_postgres_creates_a_role_pair_per_service_from_the_init_script(
    compose: dict[str, Any],
) -> None:
    postgres = compose["services"]["postgres"]
    assert (
        "./postgres/10-parcelpro-roles.sh:/docker-entrypoint-initdb.d/10-parcelpro-roles.sh:ro"
        in postgres["volumes"]
    )
    assert (DEPLOY / "postgres" / "10-parcelpro-roles.sh").stat().st_mode & 0o111
    for service in ("identity", "shipping", "privacy"):
        for role in ("OWNER", "APP"):
            key = f"{service.upper()}_{role}_PASSWORD_FILE"
            assert postgres["environment"][key] == f"/run/secrets/{service}_{role.lower()}_password"


def test_only_the_gateway_is_published_and_the_data_network_is_internal(
    compose: dict[str, Any],
) -> None:
    published = {name for name, s in compose["services"].items() if s.get("ports")}
    assert published == {"gateway"}
    assert compose["networks"]["data"] == {"internal": True}
    for name in ("postgres", "redis"):
        assert compose["services"][name]["networks"] == ["data"]
    assert "data" not in compose["services"]["gateway"]["networks"]


def test_privacy_processes_that_handle_exports_share_one_volume(compose: dict[str, Any]) -> None:
    # Decision 0808: a worker writes the ZIP, the API serves it, the deadlines job purges it.
    services = compose["services"]
    assert "privacy_exports" in compose["volumes"]
    for name in ("privacy", "privacy-worker", "privacy-deadlines"):
        directory = services[name]["environment"]["PRIVACY_EXPORT_DIR"]
        assert f"privacy_exports:{directory}" in services[name]["volumes"], name


def test_the_gateway_serves_https_for_the_domain_with_the_production_caddyfile(
    compose: dict[str, Any],
) -> None:
    gateway = compose["services"]["gateway"]
    assert gateway["command"] == [
        "gateway",
        "run",
        "--config",
        "/app/deploy/gateway/Caddyfile.prod",
    ]
    assert {"80:80", "443:443", "443:443/udp"} == set(gateway["ports"])
    assert gateway["environment"]["DOMAIN"].startswith("${DOMAIN:?")
    assert gateway["environment"]["ACME_EMAIL"].startswith("${ACME_EMAIL:?")
    # Certificates and the ACME account survive restarts.
    assert "caddy_data:/data" in gateway["volumes"]


def test_scheduled_jobs_match_the_kubernetes_cronjobs(
    compose: dict[str, Any], rendered: list[dict[str, Any]]
) -> None:
    jobs = {
        tuple(s["command"]) for s in compose["services"].values() if "jobs" in s.get("profiles", [])
    }
    cronjobs = {
        tuple(r["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["args"])
        for r in rendered
        if r["kind"] == "CronJob"
    }
    assert jobs == cronjobs
