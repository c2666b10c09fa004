"""A small kustomize renderer for the features deploy/k8s uses, so the manifests are tested on
machines without a kustomize binary.

Supported: ``resources`` (files and directories), ``namespace``, ``images``, ``patches`` (a
strategic-merge patch of maps, or a JSON 6902 patch, by ``path`` or inline ``patch``, with an
optional ``target`` of ``kind`` and anchored-regex ``name``). Anything else raises, so the
renderer can never silently differ from kustomize; where ``kubectl`` exists a test compares the
two outputs.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import yaml

Resource = dict[str, Any]

SUPPORTED_KEYS = {"apiVersion", "kind", "resources", "namespace", "images", "patches"}
CLUSTER_SCOPED_KINDS = {
    "Namespace",
    "ClusterRole",
    "ClusterRoleBinding",
    "ClusterIssuer",
    "CustomResourceDefinition",
    "PersistentVolume",
    "StorageClass",
    "PriorityClass",
    "IngressClass",
}


class UnsupportedKustomization(Exception):
    pass


def load_documents(path: Path) -> list[Resource]:
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]


def render(directory: Path) -> list[Resource]:
    """The resources ``kustomize build directory`` produces (in input order)."""
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text(encoding="utf-8"))
    unknown = set(kustomization) - SUPPORTED_KEYS
    if unknown:
        raise UnsupportedKustomization(f"{directory}: unsupported fields {sorted(unknown)}")
    resources: list[Resource] = []
    for entry in kustomization.get("resources", []):
        path = (directory / entry).resolve()
        resources.extend(render(path) if path.is_dir() else load_documents(path))
    for patch in kustomization.get("patches", []):
        _apply_patch(resources, directory, patch)
    namespace = kustomization.get("namespace")
    if namespace:
        for resource in resources:
            if resource["kind"] not in CLUSTER_SCOPED_KINDS:
                resource.setdefault("metadata", {})["namespace"] = namespace
    for image in kustomization.get("images", []):
        _set_image(resources, image)
    return resources


# -- patches -------------------------------------------------------------------------------------


def _apply_patch(resources: list[Resource], directory: Path, spec: dict[str, Any]) -> None:
    unknown = set(spec) - {"path", "patch", "target"}
    if unknown:
        raise UnsupportedKustomization(f"unsupported patch fields {sorted(unknown)}")
    text = (
        (directory / spec["path"]).read_text(encoding="utf-8") if "path" in spec else spec["patch"]
    )
    body = yaml.safe_load(text)
    target = spec.get("target")
    if isinstance(body, list):
        if target is None:
            raise UnsupportedKustomization("a JSON 6902 patch needs a target")
        for resource in _select(resources, target):
            for operation in body:
                json6902(resource, operation)
        return
    if target is None:
        target = {"kind": body["kind"], "name": re.escape(body["metadata"]["name"])}
    matched = _select(resources, target)
    if not matched:
        raise UnsupportedKustomization(f"patch {spec} matches no resource")
    for resource in matched:
        patch = copy.deepcopy(body)
        patch.get("metadata", {}).pop("name", None)
        merged = strategic_merge(resource, patch)
        resource.clear()
        resource.update(merged)


def _select(resources: list[Resource], target: dict[str, Any]) -> list[Resource]:
    unknown = set(target) - {"kind", "name"}
    if unknown:
        raise UnsupportedKustomization(f"unsupported target fields {sorted(unknown)}")
    selected = []
    for resource in resources:
        if "kind" in target and resource["kind"] != target["kind"]:
            continue
        if "name" in target and not re.fullmatch(target["name"], resource["metadata"]["name"]):
            continue
        selected.append(resource)
    return selected


def strategic_merge(original: Any, patch: Any) -> Any:
    """Strategic merge for maps: keys merge recursively, ``null`` deletes, lists are replaced.

    Lists of named objects (containers, env ...) merge by name in kustomize; that is not
    implemented, and refused rather than done differently.
    """
    if isinstance(original, dict) and isinstance(patch, dict):
        merged = dict(original)
        for key, value in patch.items():
            if value is None:
                merged.pop(key, None)
            elif key in merged:
                merged[key] = strategic_merge(merged[key], value)
            else:
                merged[key] = copy.deepcopy(value)
        return merged
    if isinstance(original, list) and isinstance(patch, list):
        if any(isinstance(item, dict) and "name" in item for item in (*original, *patch)):
            raise UnsupportedKustomization("merging lists of named objects is not supported")
        return copy.deepcopy(patch)
    return copy.deepcopy(patch)


def _pointer(path: str) -> list[str]:
    if not path.startswith("/"):
        raise ValueError(f"bad JSON pointer {path!r}")
    return [part.replace("~1", "/").replace("~0", "~") for part in path[1:].split("/")]


def json6902(document: Resource, operation: dict[str, Any]) -> None:
    """One RFC 6902 operation (add, replace, remove), in place."""
    *parents, last = _pointer(operation["path"])
    node: Any = document
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    op = operation["op"]
    if isinstance(node, list):
        index = len(node) if last == "-" else int(last)
        if op == "add":
            node.insert(index, copy.deepcopy(operation["value"]))
        elif op == "replace":
            node[index] = copy.deepcopy(operation["value"])
        elif op == "remove":
            del node[index]
        else:
            raise UnsupportedKustomization(f"unsupported JSON patch op {op!r}")
        return
    if op == "replace":
        if last not in node:
            raise KeyError(f"replace of missing {operation['path']}")
        node[last] = copy.deepcopy(operation["value"])
    elif op == "add":
        node[last] = copy.deepcopy(operation["value"])
    elif op == "remove":
        del node[last]
    else:
        raise UnsupportedKustomization(f"unsupported JSON patch op {op!r}")


# -- images --------------------------------------------------------------------------------------


def pod_specs(resource: Resource) -> list[dict[str, Any]]:
    """The pod specs inside a workload resource (Deployment, Job, CronJob ...)."""
    spec = resource.get("spec", {})
    if resource["kind"] == "CronJob":
        return [spec["jobTemplate"]["spec"]["template"]["spec"]]
    if "template" in spec and "spec" in spec["template"]:
        return [spec["template"]["spec"]]
    return []


def _image_name(image: str) -> str:
    name = image.split("@", 1)[0]
    last_slash = name.rfind("/")
    colon = name.rfind(":")
    return name[:colon] if colon > last_slash else name


def _set_image(resources: list[Resource], image: dict[str, Any]) -> None:
    unknown = set(image) - {"name", "newName", "newTag"}
    if unknown:
        raise UnsupportedKustomization(f"unsupported image fields {sorted(unknown)}")
    for resource in resources:
        for pod in pod_specs(resource):
            for container in [*pod.get("initContainers", []), *pod.get("containers", [])]:
                current = container["image"]
                if _image_name(current) != image["name"]:
                    continue
                name = image.get("newName", image["name"])
                tag = image.get("newTag")
                if tag is None:
                    rest = current[len(image["name"]) :]
                    container["image"] = name + rest
                else:
                    container["image"] = f"{name}:{tag}"
