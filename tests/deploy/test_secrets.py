"""Secrets: deploy/generate-secrets.sh writes every value in the format the services read, under
the names docker-compose.yml and the Kubernetes manifests give them, and both sides of a service
client (identity's map and the calling service) hold the same secret."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from libs.common.settings import BaseServiceSettings
from services.identity_api.settings import IdentitySettings, _dev_service_clients
from services.privacy_api.settings import PrivacySettings
from services.shipping_api.settings import CARRIER_NAMES, ShippingSettings
from tests.deploy.compose_env import environment, read_secret_files
from tests.deploy.conftest import DEPLOY, K8S
from tests.deploy.kustomize import pod_specs, render

SETTINGS: dict[str, type[BaseServiceSettings]] = {
    "identity": IdentitySettings,
    "shipping": ShippingSettings,
    "privacy": PrivacySettings,
}
OPERATOR = {
    "DOMAIN": "api.parcelpro.example",
    "SMTP_URL": "smtp://mail.parcelpro.example:587",
    "ACME_EMAIL": "ops@parcelpro.example",
}


def generate(directory: Path, **env: str) -> str:
    result = subprocess.run(
        [str(DEPLOY / "generate-secrets.sh"), str(directory)],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return result.stdout


@pytest.fixture(scope="module")
def secrets(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("generated") / "secrets"
    generate(directory)
    return directory


def settings_of(
    compose: dict[str, Any], service: str, secrets: Path, monkeypatch: pytest.MonkeyPatch
) -> Any:
    """The settings ``service`` starts with in production from compose's environment."""
    for name in list(os.environ):
        if name.startswith(("IDENTITY_", "SHIPPING_", "PRIVACY_")):
            monkeypatch.delenv(name)
    env = read_secret_files(environment(compose, service, secrets, OPERATOR))
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert env["ENVIRONMENT"] == "production"
    return SETTINGS[service]()


@pytest.mark.parametrize("service", sorted(SETTINGS))
def test_each_service_accepts_the_generated_secrets_in_production(
    compose: dict[str, Any], secrets: Path, service: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = settings_of(compose, service, secrets, monkeypatch)
    assert settings.environment == "production"
    assert settings.database_url.startswith("postgresql+asyncpg://")
    assert settings.redis_url.startswith("redis://")


def test_identity_can_seal_with_the_generated_field_key_and_hash_with_its_hash_key(
    compose: dict[str, Any], secrets: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    identity = settings_of(compose, "identity", secrets, monkeypatch)
    active = (secrets / "identity_field_encryption_active_key").read_text().strip()
    assert identity.field_encryption_active_key == active
    assert list(identity.field_encryption_keys) == [active]
    cipher = identity.field_cipher()
    sealed = cipher.encrypt("NL91ABNA0417164300", context="accounts.iban:x")
    assert sealed.startswith(f"aesgcm:{active}:")
    assert cipher.decrypt(sealed, context="accounts.iban:x") == "NL91ABNA0417164300"
    assert len(identity.hash_key_bytes()) >= 32


def test_shipping_has_a_strong_secret_for_every_carrier(
    compose: dict[str, Any], secrets: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shipping = settings_of(compose, "shipping", secrets, monkeypatch)
    assert set(shipping.carrier_secrets) == set(CARRIER_NAMES)
    assert len(set(shipping.carrier_secrets.values())) == len(CARRIER_NAMES)
    assert shipping.blind_index_key != shipping.webhook_secret_key


def test_shipping_reads_earlier_webhook_keys_from_their_file_during_a_rotation(
    compose: dict[str, Any], secrets: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    previous = secrets / "shipping_webhook_secret_previous_keys"
    assert settings_of(compose, "shipping", secrets, monkeypatch).webhook_secret_previous_keys == []
    generated = previous.read_text()
    earlier = "e" * 43
    previous.write_text(f'["{earlier}"]\n')
    try:
        shipping = settings_of(compose, "shipping", secrets, monkeypatch)
    finally:
        previous.write_text(generated)
    assert shipping.webhook_secret_previous_keys == [earlier]


@pytest.mark.parametrize("client", ["shipping", "privacy"])
def test_identity_knows_each_calling_service_by_the_secret_that_service_presents(
    compose: dict[str, Any], secrets: Path, client: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    identity = settings_of(compose, "identity", secrets, monkeypatch)
    caller = settings_of(compose, client, secrets, monkeypatch)
    registered = identity.service_clients[caller.service_client_id]
    assert registered.secret == caller.service_client_secret
    # The grants are those identity gives the service in development (decision 0003).
    assert registered.scopes == _dev_service_clients()[caller.service_client_id].scopes


def test_identity_calls_no_other_service_so_has_no_client_secret(
    compose: dict[str, Any],
) -> None:
    assert (
        "IDENTITY_SERVICE_CLIENT_SECRET_FILE" not in compose["services"]["identity"]["environment"]
    )
    assert set(_dev_service_clients()) == {"shipping_api", "privacy_api"}


def test_running_again_keeps_secrets_and_makes_derived_files_follow_a_rotation(
    tmp_path: Path,
) -> None:
    directory = tmp_path / "secrets"
    generate(directory, PARCELPRO_DB_HOST="db.internal", PARCELPRO_DB_OPTIONS="ssl=require")
    before = {path.name: path.read_text() for path in directory.iterdir()}

    assert generate(directory) == ""  # nothing to add, nothing changed (host kept)
    assert {path.name: path.read_text() for path in directory.iterdir()} == before

    # Rotation: delete a value and run again; what is made from it follows.
    (directory / "shipping_service_client_secret").unlink()
    (directory / "privacy_app_password").unlink()
    output = generate(directory)
    secret = (directory / "shipping_service_client_secret").read_text().strip()
    password = (directory / "privacy_app_password").read_text().strip()
    assert secret != before["shipping_service_client_secret"].strip()
    clients = json.loads((directory / "identity_service_clients").read_text())
    assert clients["shipping_api"]["secret"] == secret
    url = (directory / "privacy_database_url").read_text().strip()
    assert (
        url == f"postgresql+asyncpg://privacy_app:{password}@db.internal:5432/parcelpro?ssl=require"
    )
    changed = {line.split()[-1].rsplit("/", 1)[-1] for line in output.splitlines()}
    assert changed == {
        "shipping_service_client_secret",
        "identity_service_clients",
        "privacy_app_password",
        "privacy_database_url",
    }
    # Keys that encrypt or index stored data are never replaced by a run.
    for kept in ("identity_field_encryption_keys", "identity_hash_key", "shipping_blind_index_key"):
        assert (directory / kept).read_text() == before[kept]


# -- Kubernetes: the same files under the same variables ----------------------------------------


def _create_secrets(secrets: Path, tmp_path: Path) -> dict[str, dict[str, str]]:
    """Run deploy/k8s/create-secrets.sh against a kubectl that records what it is asked to
    create: Secret name -> key -> the generated file's name (or a literal value)."""
    bin_dir, log = tmp_path / "bin", tmp_path / "kubectl"
    bin_dir.mkdir()
    log.mkdir()
    kubectl = bin_dir / "kubectl"
    kubectl.write_text(
        "#!/bin/sh\n"
        'if [ "$1" = create ]; then printf \'%s\\n\' "$@" > "$KUBECTL_LOG/$4"; fi\n'
        'if [ "$1" = apply ]; then cat > /dev/null; fi\n'
    )
    kubectl.chmod(0o755)
    subprocess.run(
        [str(K8S / "create-secrets.sh"), "parcelpro", str(secrets)],
        env={
            **os.environ,
            "PATH": f"{bin_dir}:{os.environ['PATH']}",
            "KUBECTL_LOG": str(log),
            "SMTP_URL": OPERATOR["SMTP_URL"],
        },
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=60,
        check=True,
    )
    created: dict[str, dict[str, str]] = {}
    for record in log.iterdir():
        keys: dict[str, str] = {}
        for arg in record.read_text().splitlines():
            for flag in ("--from-file=", "--from-literal="):
                if arg.startswith(flag):
                    key, _, source = arg.removeprefix(flag).partition("=")
                    keys[key] = Path(source).name if flag == "--from-file=" else source
                    if flag == "--from-file=":
                        assert Path(source).is_file(), source
        created[record.name] = keys
    return created


def _secret_file(pod: dict[str, Any], container: dict[str, Any], path: str) -> tuple[str, str]:
    """(Secret name, key) behind a file path inside a container."""
    directory, _, key = path.rpartition("/")
    mount = next(m for m in container["volumeMounts"] if m["mountPath"] == directory)
    volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
    return volume["secret"]["secretName"], key


def test_kubernetes_pods_read_the_same_generated_files_as_compose_containers(
    compose: dict[str, Any], secrets: Path, tmp_path: Path
) -> None:
    created = _create_secrets(secrets, tmp_path)
    compared = set()
    for resource in render(K8S / "overlays" / "prod"):
        name = resource["metadata"]["name"]
        if not pod_specs(resource) or name not in compose["services"]:
            continue
        (pod,) = pod_specs(resource)
        (container,) = pod["containers"]
        in_compose = environment(compose, name, secrets, OPERATOR)
        from_files = {
            item["name"]: item["value"]
            for item in container.get("env", [])
            if item["name"].endswith("_FILE") and item["name"] != "SMTP_URL_FILE"
        }
        assert set(from_files) == {k for k in in_compose if k.endswith("_FILE")}, name
        for variable, path in from_files.items():
            secret, key = _secret_file(pod, container, path)
            assert key in created[secret], (name, variable, secret, key)
            assert created[secret][key] == Path(in_compose[variable]).name, (name, variable)
        compared.add(name)
    assert {"migrate", "identity", "shipping", "privacy", "privacy-worker", "shipping-outbox"} <= (
        compared
    )
    assert "identity-purge-expired" in compared


def test_every_secret_a_pod_mounts_is_created_with_every_key_it_reads(
    rendered: list[dict[str, Any]], secrets: Path, tmp_path: Path
) -> None:
    created = _create_secrets(secrets, tmp_path)
    for resource in rendered:
        for pod in pod_specs(resource):
            for container in pod["containers"]:
                for item in container.get("env", []):
                    if item["name"].endswith("_FILE"):
                        secret, key = _secret_file(pod, container, item["value"])
                        assert key in created.get(secret, {}), (resource["metadata"], item)


def test_service_settings_that_are_not_secret_agree_between_compose_and_kubernetes(
    compose: dict[str, Any], secrets: Path
) -> None:
    rendered = render(K8S / "overlays" / "prod")
    config = next(
        r["data"]
        for r in rendered
        if r["kind"] == "ConfigMap" and r["metadata"]["name"] == "parcelpro-config"
    )
    for resource in rendered:
        name = resource["metadata"]["name"]
        if resource["kind"] != "Deployment" or name not in compose["services"]:
            continue
        (container,) = pod_specs(resource)[0]["containers"]
        if container["args"][0] not in SETTINGS:
            continue  # the gateway: Caddy behind the Ingress here, with HTTPS itself in compose
        service = container["args"][0].upper()
        k8s = {**config, **{i["name"]: i["value"] for i in container.get("env", [])}}
        in_compose = environment(compose, name, secrets, OPERATOR)

        def own(env: dict[str, str], prefix: str = service) -> dict[str, str]:
            return {
                k: v
                for k, v in env.items()
                if k.startswith(f"{prefix}_") and not k.endswith("_FILE")
            }

        assert own(k8s) == own(in_compose), name


def test_the_manifests_name_no_secret_the_generator_does_not_make(secrets: Path) -> None:
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text(encoding="utf-8"))
    assert {p.name for p in secrets.iterdir()} == set(compose["secrets"])
