"""The Kubernetes manifests: valid objects, complete workloads, the required jobs."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import jsonschema
import kubernetes_validate
import pytest

from tests.deploy.commands import is_known_command
from tests.deploy.conftest import K8S, ROOT
from tests.deploy.kustomize import load_documents, pod_specs, render

KUBERNETES_VERSION = "1.33"
HTTP_WORKLOADS = {"identity": 8001, "shipping": 8002, "privacy": 8003, "gateway": 8000}
SCHEMAS = ROOT / "tests" / "deploy" / "schemas"


def by_kind(resources: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {r["metadata"]["name"]: r for r in resources if r["kind"] == kind}


def containers(resource: dict[str, Any]) -> list[dict[str, Any]]:
    return [c for pod in pod_specs(resource) for c in pod["containers"]]


def test_every_rendered_object_is_valid_against_the_kubernetes_schemas(
    rendered: list[dict[str, Any]],
) -> None:
    for resource in rendered:
        # strict: unknown fields (typos such as "readinessprobe") are errors, not ignored.
        kubernetes_validate.validate(resource, KUBERNETES_VERSION, strict=True)


def test_the_cluster_issuers_are_valid_cert_manager_acme_issuers() -> None:
    schema = json.loads((SCHEMAS / "cert-manager-clusterissuer.json").read_text())
    issuers = load_documents(K8S / "cluster" / "cluster-issuers.yaml")
    assert {i["metadata"]["name"] for i in issuers} == {
        "parcelpro-letsencrypt",
        "parcelpro-letsencrypt-staging",
    }
    for issuer in issuers:
        jsonschema.validate(issuer, schema)
        assert "letsencrypt.org" in issuer["spec"]["acme"]["server"]


def test_object_names_are_unique(rendered: list[dict[str, Any]]) -> None:
    keys = Counter((r["kind"], r["metadata"]["name"]) for r in rendered)
    assert [key for key, count in keys.items() if count > 1] == []


def test_everything_lives_in_the_overlays_namespace(
    rendered: list[dict[str, Any]], overlay: str
) -> None:
    expected = "parcelpro" if overlay == "prod" else "parcelpro-dev"
    namespaces = by_kind(rendered, "Namespace")
    assert list(namespaces) == [expected]
    labels = namespaces[expected]["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    for resource in rendered:
        if resource["kind"] != "Namespace":
            assert resource["metadata"]["namespace"] == expected, resource["metadata"]["name"]


@pytest.mark.parametrize("name", sorted(HTTP_WORKLOADS))
def test_each_http_workload_has_probes_resources_service_hpa_and_pdb(
    rendered: list[dict[str, Any]], name: str
) -> None:
    deployment = by_kind(rendered, "Deployment")[name]
    (container,) = containers(deployment)
    port = HTTP_WORKLOADS[name]
    assert container["ports"] == [{"name": "http", "containerPort": port, "protocol": "TCP"}]
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    ready_path = "/healthz" if name == "gateway" else "/readyz"
    assert container["readinessProbe"]["httpGet"] == {"path": ready_path, "port": "http"}
    for kind in ("requests", "limits"):
        assert set(container["resources"][kind]) == {"cpu", "memory"}

    labels = deployment["spec"]["template"]["metadata"]["labels"]
    service = by_kind(rendered, "Service")[name]
    assert service["spec"]["selector"].items() <= labels.items()
    assert service["spec"]["ports"][0]["port"] == port

    hpa = by_kind(rendered, "HorizontalPodAutoscaler")[name]
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": name,
    }
    assert 1 <= hpa["spec"]["minReplicas"] < hpa["spec"]["maxReplicas"]

    pdb = by_kind(rendered, "PodDisruptionBudget")[name]
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    # A budget that can never be met blocks every node drain.
    if "minAvailable" in pdb["spec"]:
        assert pdb["spec"]["minAvailable"] < hpa["spec"]["minReplicas"]


def test_production_keeps_at_least_two_replicas_of_every_http_workload() -> None:
    production = render(K8S / "overlays" / "prod")
    for name in HTTP_WORKLOADS:
        assert by_kind(production, "HorizontalPodAutoscaler")[name]["spec"]["minReplicas"] >= 2


def test_every_pod_runs_non_root_with_a_read_only_root_and_no_token(
    rendered: list[dict[str, Any]],
) -> None:
    workloads = [r for r in rendered if pod_specs(r)]
    assert {r["kind"] for r in workloads} == {"Deployment", "Job", "CronJob"}
    for resource in workloads:
        for pod in pod_specs(resource):
            assert pod["automountServiceAccountToken"] is False
            assert pod["securityContext"]["runAsNonRoot"] is True
            assert pod["securityContext"]["runAsUser"] != 0
            assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
            for container in pod["containers"]:
                security = container["securityContext"]
                assert security["readOnlyRootFilesystem"] is True
                assert security["allowPrivilegeEscalation"] is False
                assert security["capabilities"] == {"drop": ["ALL"]}
                assert {"requests", "limits"} <= set(container["resources"])


def test_images_come_from_the_registry_with_a_tag(
    rendered: list[dict[str, Any]], overlay: str
) -> None:
    images = {c["image"] for r in rendered for c in containers(r)}
    expected = "0.1.0" if overlay == "prod" else "dev"
    assert images == {f"registry.parcelpro.nl/parcelpro:{expected}"}


def _commands(rendered: list[dict[str, Any]], kind: str) -> dict[str, list[str]]:
    return {
        name: containers(resource)[0]["args"] for name, resource in by_kind(rendered, kind).items()
    }


def test_scheduled_jobs_cover_retention_request_log_expiry_and_deadlines(
    rendered: list[dict[str, Any]],
) -> None:
    cronjobs = by_kind(rendered, "CronJob")
    commands = _commands(rendered, "CronJob")
    assert sorted(commands.values()) == sorted(
        [
            ["shipping", "purge"],
            ["identity", "purge-expired"],
            ["identity", "purge-request-log"],
            ["shipping", "purge-request-log"],
            ["privacy", "purge-request-log"],
            ["privacy", "deadlines"],
        ]
    )
    for cronjob in cronjobs.values():
        spec = cronjob["spec"]
        # Two runs of one purge at once would only fight over the same rows.
        assert spec["concurrencyPolicy"] == "Forbid"
        assert spec["timeZone"] == "Europe/Amsterdam"
        assert spec["jobTemplate"]["spec"]["activeDeadlineSeconds"] > 0
        assert spec["failedJobsHistoryLimit"] >= 1
    # The 72-hour breach clock and one-month answers must not slip by a day.
    assert cronjobs["privacy-deadlines"]["spec"]["schedule"] == "*/15 * * * *"


def test_migrations_run_as_a_job_with_the_schema_owners_credentials(
    rendered: list[dict[str, Any]],
) -> None:
    job = by_kind(rendered, "Job")["migrate"]
    (container,) = containers(job)
    assert container["args"] == ["migrate"]
    env = {item["name"]: item["value"] for item in container["env"]}
    for service in ("identity", "shipping", "privacy"):
        assert (
            env[f"{service.upper()}_DATABASE_URL_FILE"]
            == f"/run/secrets/parcelpro/{service}_database_url"
        )
    volumes = {v["name"]: v for v in pod_specs(job)[0]["volumes"] if "secret" in v}
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    assert volumes[mounts["/run/secrets/parcelpro"]]["secret"]["secretName"] == (
        "parcelpro-migration"
    )
    # Each service's command validates its settings before migrating: every other variable the
    # service reads from a file, the Job reads from that service's own Secret (decision 0806).
    for service in ("identity", "shipping", "privacy"):
        deployment = containers(by_kind(rendered, "Deployment")[service])[0]
        wanted = {
            item["name"]
            for item in deployment["env"]
            if item["name"].startswith(f"{service.upper()}_")
            and item["name"].endswith("_FILE")
            and item["name"] != f"{service.upper()}_DATABASE_URL_FILE"
        }
        for name in wanted:
            directory, _, key = env[name].rpartition("/")
            assert volumes[mounts[directory]]["secret"]["secretName"] == f"{service}-secrets"
            assert (
                key
                == next(i["value"] for i in deployment["env"] if i["name"] == name).rpartition("/")[
                    2
                ]
            )
    # The services never migrate on start: the Job does, once, before they become ready.
    for name in ("identity", "shipping", "privacy"):
        assert "--no-migrate" in containers(by_kind(rendered, "Deployment")[name])[0]["args"]


def test_the_workers_run_as_deployments_with_a_disruption_budget(
    rendered: list[dict[str, Any]],
) -> None:
    deployments = by_kind(rendered, "Deployment")
    budgets = by_kind(rendered, "PodDisruptionBudget")
    for name, args in {
        "privacy-worker": ["privacy", "worker"],
        "shipping-outbox": ["shipping", "deliver-outbox"],
    }.items():
        assert containers(deployments[name])[0]["args"] == args
        labels = deployments[name]["spec"]["template"]["metadata"]["labels"]
        assert budgets[name]["spec"]["selector"]["matchLabels"].items() <= labels.items()


def test_the_shipping_api_leaves_its_outboxes_to_the_outbox_worker(
    rendered: list[dict[str, Any]],
) -> None:
    # Decision 0807: webhooks and recipient e-mail are delivered by shipping-outbox only.
    deployments = by_kind(rendered, "Deployment")
    api = {i["name"]: i.get("value") for i in containers(deployments["shipping"])[0]["env"]}
    assert api["SHIPPING_OUTBOX_WORKER_ENABLED"] == "false"
    worker = {i["name"] for i in containers(deployments["shipping-outbox"])[0]["env"]}
    assert "SHIPPING_OUTBOX_WORKER_ENABLED" not in worker
    # The API's selector does not take in the worker's pods (they serve no HTTP).
    selector = by_kind(rendered, "Service")["shipping"]["spec"]["selector"]
    outbox_labels = deployments["shipping-outbox"]["spec"]["template"]["metadata"]["labels"]
    assert not selector.items() <= outbox_labels.items()


def test_every_privacy_pod_that_handles_exports_shares_one_volume(
    rendered: list[dict[str, Any]],
) -> None:
    # Decision 0302: a worker writes the ZIP, any API pod serves it, the deadlines job purges it.
    claims = by_kind(rendered, "PersistentVolumeClaim")
    assert claims["privacy-exports"]["spec"]["accessModes"] == ["ReadWriteMany"]
    for kind, name in (
        ("Deployment", "privacy"),
        ("Deployment", "privacy-worker"),
        ("CronJob", "privacy-deadlines"),
    ):
        resource = by_kind(rendered, kind)[name]
        (pod,) = pod_specs(resource)
        (container,) = pod["containers"]
        env = {i["name"]: i.get("value") for i in container["env"]}
        volume = next(v["name"] for v in pod["volumes"] if "persistentVolumeClaim" in v)
        assert next(v for v in pod["volumes"] if v["name"] == volume)["persistentVolumeClaim"] == {
            "claimName": "privacy-exports"
        }
        mount = next(m for m in container["volumeMounts"] if m["name"] == volume)
        assert env["PRIVACY_EXPORT_DIR"] == mount["mountPath"], name


def test_each_service_mounts_only_its_own_secrets(rendered: list[dict[str, Any]]) -> None:
    for resource in rendered:
        for pod in pod_specs(resource):
            names = {v["secret"]["secretName"] for v in pod.get("volumes", []) if "secret" in v}
            service = containers(resource)[0]["args"][0]
            if service in {"identity", "shipping", "privacy"}:
                assert names == {f"{service}-secrets", "parcelpro-smtp"}, resource["metadata"]
            for container in pod["containers"]:
                for item in container.get("env", []):
                    # Secrets arrive as files; no secret value sits in a manifest.
                    assert (
                        "valueFrom" in item
                        or not any(word in item["name"] for word in ("PASSWORD", "SECRET", "KEY"))
                        or item["name"].endswith("_FILE")
                    ), item


def test_every_container_runs_a_command_the_image_knows(rendered: list[dict[str, Any]]) -> None:
    for resource in rendered:
        for container in containers(resource):
            assert is_known_command(container["args"]), (resource["metadata"], container["args"])
