"""The environment docker-compose.yml gives a container, for processes started on this machine:
variables interpolated as compose does, and ``/run/secrets/<name>`` (where compose mounts a
secret) pointing at the file of that name in a secrets directory."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

SECRETS_MOUNT = "/run/secrets/"
_VARIABLE = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:-|:\?)(?P<arg>[^}]*))?\}")


def interpolate(value: str, variables: Mapping[str, str]) -> str:
    """``${NAME}``, ``${NAME:-default}`` and ``${NAME:?error}`` as compose resolves them."""

    def replace(match: re.Match[str]) -> str:
        name, op, arg = match["name"], match["op"], match["arg"]
        given = variables.get(name, "")
        if given:
            return given
        if op == ":?":
            raise KeyError(f"{name} must be set: {arg}")
        return arg if op == ":-" else ""

    return _VARIABLE.sub(replace, value.replace("$$", "\0")).replace("\0", "$")


def environment(
    compose: Mapping[str, Any],
    service: str,
    secrets_dir: Path,
    variables: Mapping[str, str],
) -> dict[str, str]:
    """The container environment of ``service``; secret files are read from ``secrets_dir``."""
    definition = compose["services"][service]
    mounted = set(definition.get("secrets", []))
    env: dict[str, str] = {}
    for key, raw in definition.get("environment", {}).items():
        value = interpolate(str(raw), variables)
        if key.endswith("_FILE") and value.startswith(SECRETS_MOUNT):
            name = value.removeprefix(SECRETS_MOUNT)
            assert name in mounted, f"{service}: {key} names {name}, which is not mounted"
            value = str(secrets_dir / name)
        env[key] = value
    return env


def read_secret_files(env: Mapping[str, str]) -> dict[str, str]:
    """What the image's entrypoint makes of ``NAME_FILE`` variables: ``NAME`` with the file's
    contents, trailing newlines dropped."""
    resolved: dict[str, str] = {}
    for key, value in env.items():
        if key.endswith("_FILE"):
            resolved[key.removesuffix("_FILE")] = Path(value).read_text().rstrip("\n")
        else:
            resolved[key] = value
    return resolved
