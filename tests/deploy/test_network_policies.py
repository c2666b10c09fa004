"""Who can connect to which pod, evaluated from the rendered NetworkPolicies."""

from __future__ import annotations

from typing import Any

from tests.deploy.kustomize import pod_specs

# Sources outside the namespace, by their namespace's name.
INGRESS_CONTROLLER = "ingress-nginx"
MONITORING = "monitoring"
ELSEWHERE = "default"


def _matches(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    if set(selector) - {"matchLabels"}:
        raise NotImplementedError(f"selector {selector}")
    return selector.get("matchLabels", {}).items() <= labels.items()


def pods(rendered: list[dict[str, Any]]) -> dict[str, dict[str, str]]:
    """Every pod template of the namespace, by its workload's name."""
    found = {}
    for resource in rendered:
        if not pod_specs(resource):
            continue
        spec = resource["spec"]
        template = (
            spec["jobTemplate"]["spec"]["template"]
            if resource["kind"] == "CronJob"
            else spec["template"]
        )
        found[resource["metadata"]["name"]] = template["metadata"]["labels"]
    return found


def allowed(
    rendered: list[dict[str, Any]],
    target: dict[str, str],
    *,
    source_labels: dict[str, str] | None = None,
    source_namespace: str | None = None,
) -> bool:
    """Kubernetes' rule: a selected pod accepts what any policy selecting it allows."""
    namespace = next(r["metadata"]["name"] for r in rendered if r["kind"] == "Namespace")
    source_namespace = source_namespace or namespace
    namespace_labels = {"kubernetes.io/metadata.name": source_namespace}
    policies = [
        r
        for r in rendered
        if r["kind"] == "NetworkPolicy"
        and "Ingress" in r["spec"]["policyTypes"]
        and _matches(r["spec"]["podSelector"], target)
    ]
    if not policies:
        return True
    for policy in policies:
        for rule in policy["spec"].get("ingress", []):
            assert rule["ports"] == [{"port": "http"}]
            for peer in rule["from"]:
                if "namespaceSelector" in peer and "podSelector" in peer:
                    raise NotImplementedError(peer)
                if "namespaceSelector" in peer and _matches(
                    peer["namespaceSelector"], namespace_labels
                ):
                    return True
                if (
                    "podSelector" in peer
                    and source_namespace == namespace
                    and source_labels is not None
                    and _matches(peer["podSelector"], source_labels)
                ):
                    return True
    return False


EXPECTED_CALLERS = {
    # workload -> workloads of the namespace that may connect to it
    "identity": {
        "gateway",
        "shipping",
        "privacy",
        "privacy-worker",
        "shipping-outbox",
        "shipping-purge",
        "shipping-purge-request-log",
        "privacy-deadlines",
        "privacy-purge-request-log",
    },
    "shipping": {
        "gateway",
        "privacy",
        "privacy-worker",
        "privacy-deadlines",
        "privacy-purge-request-log",
    },
    "privacy": {
        "gateway",
        "identity",
        "shipping",
        "privacy",
        "privacy-worker",
        "shipping-outbox",
        "identity-purge-expired",
        "identity-purge-request-log",
        "shipping-purge",
        "shipping-purge-request-log",
        "privacy-deadlines",
        "privacy-purge-request-log",
    },
    "gateway": set(),
    "privacy-worker": set(),
    "shipping-outbox": set(),
    "migrate": set(),
}


def test_each_service_port_is_reachable_only_by_its_callers(
    rendered: list[dict[str, Any]],
) -> None:
    workloads = pods(rendered)
    for target, callers in EXPECTED_CALLERS.items():
        reachable_from = {
            source
            for source, labels in workloads.items()
            if allowed(rendered, workloads[target], source_labels=labels)
        }
        assert reachable_from == callers, target


def test_public_traffic_enters_only_through_the_ingress_controller(
    rendered: list[dict[str, Any]],
) -> None:
    workloads = pods(rendered)
    for name in ("identity", "shipping", "privacy", "gateway"):
        assert allowed(rendered, workloads[name], source_namespace=INGRESS_CONTROLLER)
        assert not allowed(rendered, workloads[name], source_namespace=ELSEWHERE)
    for name in ("privacy-worker", "shipping-outbox", "migrate", "shipping-purge"):
        assert not allowed(rendered, workloads[name], source_namespace=INGRESS_CONTROLLER)


def test_prometheus_may_scrape_the_services_but_nothing_else(
    rendered: list[dict[str, Any]],
) -> None:
    workloads = pods(rendered)
    for name in ("identity", "shipping", "privacy"):
        assert allowed(rendered, workloads[name], source_namespace=MONITORING)
    assert not allowed(rendered, workloads["gateway"], source_namespace=MONITORING)
    assert not allowed(rendered, workloads["privacy-worker"], source_namespace=MONITORING)
    assert not allowed(rendered, workloads["shipping-outbox"], source_namespace=MONITORING)


def test_every_pod_is_covered_by_the_default_deny_policy(rendered: list[dict[str, Any]]) -> None:
    (deny,) = [
        r for r in rendered if r["kind"] == "NetworkPolicy" and r["spec"]["podSelector"] == {}
    ]
    assert deny["spec"] == {"podSelector": {}, "policyTypes": ["Ingress"]}
