"""What ``python -m services.gateway run`` hands Caddy besides the Caddyfile."""

from __future__ import annotations

import os

import pytest

from services.gateway.__main__ import gateway_environment, gateway_processors


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


@pytest.mark.parametrize(
    ("cpus", "cpu_max", "expected"),
    [
        (2, None, 1),  # the benchmark machine: the other CPU is the services'
        (8, "max 100000", 4),  # a cgroup without a quota
        (16, "100000 100000", 1),  # a container limited to one CPU (docker-compose.yml)
        (16, "50000 100000", 1),  # half a CPU (the Kubernetes limit) still runs goroutines
        (16, "150000 100000", 1),  # 1.5 CPUs: rounded down, not up to 2
        (16, "400000 100000", 4),  # a quota of four CPUs is the gateway's own
        (1, None, 1),
        (4, "garbage", 2),
    ],
)
def test_go_processors_follow_the_cpus_the_gateway_may_use(
    cpus: int, cpu_max: str | None, expected: int
) -> None:
    assert gateway_processors(cpus, cpu_max) == expected


def test_go_processors_are_set_unless_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GOMAXPROCS", raising=False)
    chosen = int(gateway_environment()["GOMAXPROCS"])
    assert 1 <= chosen <= max(1, len(os.sched_getaffinity(0)) // 2)
    monkeypatch.setenv("GOMAXPROCS", "3")
    assert gateway_environment()["GOMAXPROCS"] == "3"
