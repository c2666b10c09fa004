"""The test renderer of kustomizations does what kustomize does, for the features used here."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.conftest import K8S, OVERLAYS
from tests.deploy.kustomize import (
    UnsupportedKustomization,
    json6902,
    render,
    strategic_merge,
)


def write(directory: Path, name: str, content: Any) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    if isinstance(content, str):
        text = content
    elif isinstance(content, list):
        text = yaml.safe_dump_all(content)
    else:
        text = yaml.safe_dump(content)
    (directory / name).write_text(text)


DEPLOYMENT = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "web"},
    "spec": {
        "replicas": 2,
        "template": {"spec": {"containers": [{"name": "web", "image": "app:1"}]}},
    },
}
ISSUER = {"apiVersion": "cert-manager.io/v1", "kind": "ClusterIssuer", "metadata": {"name": "le"}}


def test_strategic_merge_merges_maps_replaces_lists_and_deletes_nulls() -> None:
    merged = strategic_merge(
        {"a": 1, "b": {"c": 2, "d": 3}, "e": [1, 2]},
        {"b": {"c": 20, "d": None}, "e": [3], "f": "new"},
    )
    assert merged == {"a": 1, "b": {"c": 20}, "e": [3], "f": "new"}


def test_strategic_merge_refuses_lists_kustomize_would_merge_by_name() -> None:
    with pytest.raises(UnsupportedKustomization):
        strategic_merge({"containers": [{"name": "a"}]}, {"containers": [{"name": "b"}]})


def test_json_patch_replaces_adds_and_removes_with_escaped_keys() -> None:
    document: dict[str, Any] = {"metadata": {"annotations": {"x.io/y": "1"}}, "list": [1, 2]}
    json6902(document, {"op": "replace", "path": "/metadata/annotations/x.io~1y", "value": "2"})
    json6902(document, {"op": "add", "path": "/list/-", "value": 3})
    json6902(document, {"op": "remove", "path": "/list/0"})
    assert document == {"metadata": {"annotations": {"x.io/y": "2"}}, "list": [2, 3]}
    with pytest.raises(KeyError):
        json6902(document, {"op": "replace", "path": "/metadata/missing", "value": 1})


def test_overlay_sets_namespace_images_and_targeted_patches(tmp_path: Path) -> None:
    write(tmp_path / "base", "resources.yaml", [DEPLOYMENT, ISSUER])
    write(tmp_path / "base", "kustomization.yaml", {"resources": ["resources.yaml"]})
    write(
        tmp_path / "overlay",
        "kustomization.yaml",
        {
            "namespace": "team",
            "resources": ["../base"],
            "images": [{"name": "app", "newName": "registry/app", "newTag": "2"}],
            "patches": [
                {
                    "path": "replicas.yaml",
                    "target": {"kind": "Deployment", "name": "w.b"},
                },
                {
                    "patch": "- op: add\n  path: /metadata/labels\n  value: {tier: web}\n",
                    "target": {"kind": "Deployment", "name": "web"},
                },
            ],
        },
    )
    write(
        tmp_path / "overlay",
        "replicas.yaml",
        [
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": "x"},
                "spec": {"replicas": 5},
            }
        ],
    )
    deployment, issuer = render(tmp_path / "overlay")
    assert deployment["metadata"] == {"name": "web", "namespace": "team", "labels": {"tier": "web"}}
    assert deployment["spec"]["replicas"] == 5
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == "registry/app:2"
    assert "namespace" not in issuer["metadata"]


def test_unknown_kustomization_fields_are_refused(tmp_path: Path) -> None:
    write(tmp_path, "kustomization.yaml", {"resources": [], "configMapGenerator": []})
    with pytest.raises(UnsupportedKustomization):
        render(tmp_path)


def _canonical(resources: list[dict[str, Any]]) -> dict[tuple[str, str], Any]:
    # kustomize re-serialises (sorted keys, its own order of objects): compare as data.
    return {
        (r["kind"], r["metadata"]["name"]): yaml.safe_load(yaml.safe_dump(r)) for r in resources
    }


@pytest.mark.skipif(
    shutil.which("kubectl") is None, reason="kubectl (with kustomize) not installed"
)
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_renderer_output_equals_kubectl_kustomize(overlay: str) -> None:
    directory = K8S / "overlays" / overlay
    built = subprocess.run(
        ["kubectl", "kustomize", str(directory)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    expected = [doc for doc in yaml.safe_load_all(built) if doc]
    assert _canonical(render(directory)) == _canonical(expected)
