"""How benchmark results are printed."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Result:
    scenario: str
    measured: str
    """What was measured, with the reference beside it (absolute figures drift between runs)."""
    value: float
    target: str
    passed: bool | None
    """None for a figure shown beside a scenario, with no target of its own."""


def print_report(results: list[Result]) -> None:
    width = max((len(r.scenario) for r in results), default=10)
    print(f"{'scenario':<{width}}  {'value':>8}  {'target':<10}  result  measured")
    for r in results:
        verdict = "info" if r.passed is None else "PASS" if r.passed else "FAIL"
        print(f"{r.scenario:<{width}}  {r.value:>8.3f}  {r.target:<10}  {verdict:<6}  {r.measured}")
