"""The commands the image's processes can run, as the services' own command lines define them:
``python -m services.<svc>_api [<command>] --help`` for every command, so a manifest can only
name a command (and options) the service really has."""

from __future__ import annotations

import functools
import json
import os
import sys
from pathlib import Path

from tests.support.programs import run_program

SERVICES = ("identity", "shipping", "privacy")
ROLES = {*SERVICES, "gateway", "migrate"}

# Runs ``python -m <module> --help`` and then ``python -m <module> <command> --help`` for every
# command the first help lists, in one interpreter (runpy gives exactly ``-m`` semantics; one
# start-up instead of one per command keeps this fast).
_HELP_ALL = """
import contextlib, io, json, re, runpy, sys

module = sys.argv[1]

def help_of(*args):
    sys.argv = [module, *args, "--help"]
    out, err = io.StringIO(), io.StringIO()
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            runpy.run_module(module, run_name="__main__", alter_sys=True)
        except SystemExit as exit:
            code = exit.code or 0
    return {"code": code, "stdout": out.getvalue(), "stderr": err.getvalue()}

top = help_of()
found = re.search(r"\\{([a-z,-]+)\\}", top["stdout"])
commands = found.group(1).split(",") if found else []
print(json.dumps({"": top, **{command: help_of(command) for command in commands}}))
"""


def development_environment(**extra: str) -> dict[str, str]:
    """A bare environment, as a container starts with, in development mode: a command's
    ``--help`` needs no secrets there (production refuses to start without them)."""
    return {
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "HOME": os.environ.get("HOME", "/tmp"),
        "ENVIRONMENT": "development",
        **extra,
    }


@functools.cache
def help_texts(module: str) -> dict[str, dict[str, str | int]]:
    """``command -> {code, stdout, stderr}`` of ``python -m module [command] --help``; the key
    ``""`` is the module's own help."""
    result = run_program(_HELP_ALL, module, env=development_environment())
    assert result.returncode == 0, result.stderr
    texts: dict[str, dict[str, str | int]] = json.loads(result.stdout)
    return texts


def module_of(role: str) -> str:
    return "services.gateway" if role == "gateway" else f"services.{role}_api"


def service_commands(service: str) -> frozenset[str]:
    return frozenset(name for name in help_texts(module_of(service)) if name)


def is_known_command(args: list[str]) -> bool:
    """``args`` as given to the image's entrypoint."""
    if not args or args[0] not in ROLES:
        return False
    if args[0] in SERVICES:
        return len(args) > 1 and args[1] in service_commands(args[0])
    if args[0] == "gateway":
        return args[1:2] in ([], ["run"], ["validate"])
    return args == ["migrate"]
