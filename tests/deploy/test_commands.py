"""Every command the deployment runs exists: each one in docker-compose.yml, the rendered
Kubernetes overlays and the Procfile is a command of the service's own command line
(``python -m services.<svc>_api <command> --help`` answers), with options that command has."""

from __future__ import annotations

import shlex
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import yaml

from tests.deploy.commands import help_texts, is_known_command, module_of
from tests.deploy.conftest import DEPLOY, K8S, OVERLAYS
from tests.deploy.kustomize import pod_specs, render
from tests.support.programs import ROOT

IMAGE_ROOT = "/app/"
"""Where the Dockerfile puts the repository's files the commands name (Caddyfiles)."""


def _compose_commands() -> Iterator[tuple[str, tuple[str, ...]]]:
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text(encoding="utf-8"))
    for name, service in compose["services"].items():
        if "command" in service and str(service.get("image", "")).startswith("${PARCELPRO_IMAGE"):
            yield f"compose {name}", tuple(service["command"])


def _kubernetes_commands() -> Iterator[tuple[str, tuple[str, ...]]]:
    for overlay in OVERLAYS:
        for resource in render(K8S / "overlays" / overlay):
            for pod in pod_specs(resource):
                for container in [*pod.get("initContainers", []), *pod["containers"]]:
                    where = f"{overlay} {resource['kind']} {resource['metadata']['name']}"
                    yield where, tuple(container["args"])


def _procfile_commands() -> Iterator[tuple[str, tuple[str, ...]]]:
    """``python -m services.<svc>_api serve`` is the entrypoint's ``<svc> serve``."""
    for line in (DEPLOY / "Procfile").read_text(encoding="utf-8").splitlines():
        name, _, command = line.partition(":")
        if not command.strip():
            continue
        python, flag, module, *rest = shlex.split(command)
        assert (python, flag) == ("python", "-m"), line
        role = module.removeprefix("services.").removesuffix("_api")
        assert module_of(role) == module, line
        yield f"Procfile {name}", (role, *rest)


def deployed_commands() -> dict[tuple[str, ...], list[str]]:
    """Entrypoint arguments -> where they are used."""
    found: dict[tuple[str, ...], list[str]] = {}
    for where, args in [*_compose_commands(), *_kubernetes_commands(), *_procfile_commands()]:
        found.setdefault(args, []).append(where)
    return found


def _service_invocations(args: tuple[str, ...]) -> list[tuple[str, str, list[str]]]:
    """(module, command, options) that the entrypoint runs for ``args``."""
    if args[0] == "migrate":
        return [
            (module_of(s), "migrate", list(args[1:])) for s in ("identity", "shipping", "privacy")
        ]
    return [(module_of(args[0]), args[1] if len(args) > 1 else "", list(args[2:]))]


def test_the_deployment_runs_the_expected_processes() -> None:
    assert {
        ("migrate",),
        ("identity", "serve", "--no-migrate"),
        ("shipping", "serve", "--no-migrate"),
        ("privacy", "serve", "--no-migrate"),
        ("privacy", "worker"),
        ("shipping", "deliver-outbox"),
        ("identity", "purge-expired"),
        ("shipping", "purge"),
        ("privacy", "deadlines"),
        ("identity", "purge-request-log"),
        ("shipping", "purge-request-log"),
        ("privacy", "purge-request-log"),
    } <= set(deployed_commands())


def test_every_deployed_command_is_one_the_service_has_with_options_it_knows() -> None:
    commands = deployed_commands()
    with ThreadPoolExecutor() as pool:  # one interpreter per module, side by side
        list(
            pool.map(help_texts, {module_of(args[0]) for args in commands if args[0] != "migrate"})
        )
    for args, where in commands.items():
        assert is_known_command(list(args)), (args, where)
        for module, command, rest in _service_invocations(args):
            answer = help_texts(module).get(command)
            assert answer is not None, (args, where)
            assert answer["code"] == 0, (args, where, answer["stderr"])
            assert "usage:" in str(answer["stdout"])
            for index, arg in enumerate(rest):
                if not arg.startswith("-"):
                    continue
                option = arg.split("=", 1)[0]
                assert option in str(answer["stdout"]), (args, where, option)
                if option == "--config":
                    # A path inside the image: the repository's file, copied by the Dockerfile.
                    path = rest[index + 1]
                    assert path.startswith(IMAGE_ROOT), (args, where)
                    assert (ROOT / path.removeprefix(IMAGE_ROOT)).is_file(), (args, where)


def test_a_command_the_service_does_not_have_is_caught() -> None:
    assert is_known_command(["shipping", "deliver-outbox"])
    assert not is_known_command(["shipping", "deliver-webhooks"])
    assert not is_known_command(["identity", "purge"])
    assert not is_known_command(["billing", "serve"])


@pytest.mark.parametrize("service", ["identity", "shipping", "privacy"])
def test_the_jobs_run_on_a_schedule_cover_every_housekeeping_command(service: str) -> None:
    # A service command that deletes what must not be kept has to be scheduled somewhere.
    housekeeping = {"purge", "purge-expired", "purge-request-log", "deadlines"}
    offered = {c for c in help_texts(module_of(service)) if c in housekeeping}
    deployed = {args[1] for args in deployed_commands() if args[0] == service and len(args) > 1}
    assert offered <= deployed
