"""The commands the image's processes run, as the services define them (their CLIs)."""

from __future__ import annotations

SERVICE_COMMANDS = {
    "identity": {"serve", "migrate", "downgrade", "purge-request-log"},
    "shipping": {"serve", "migrate", "downgrade", "purge-request-log", "purge"},
    "privacy": {"serve", "migrate", "downgrade", "purge-request-log", "worker", "deadlines"},
}
ROLES = {*SERVICE_COMMANDS, "gateway", "migrate"}


def is_known_command(args: list[str]) -> bool:
    """``args`` as given to the image's entrypoint."""
    if not args or args[0] not in ROLES:
        return False
    if args[0] in SERVICE_COMMANDS:
        return len(args) > 1 and args[1] in SERVICE_COMMANDS[args[0]]
    if args[0] == "gateway":
        return args[1:2] in ([], ["run"], ["validate"])
    return args == ["migrate"]
