"""What ``python -m services.gateway run`` hands Caddy besides the Caddyfile."""

from __future__ import annotations

import pytest

from services.gateway.__main__ import gateway_environment


def test_the_go_collector_runs_less_often_unless_configured(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("GOGC", raising=False)
    monkeypatch.delenv("GOMEMLIMIT", raising=False)
    defaults = gateway_environment()
    assert defaults["GOGC"] == "400"
    assert defaults["GOMEMLIMIT"] == "192MiB"
    # An operator's own setting wins.
    monkeypatch.setenv("GOGC", "100")
    monkeypatch.setenv("GOMEMLIMIT", "512MiB")
    chosen = gateway_environment()
    assert chosen["GOGC"] == "100"
    assert chosen["GOMEMLIMIT"] == "512MiB"
