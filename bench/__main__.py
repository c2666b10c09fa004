"""``make bench``: every performance scenario, each as a ratio against a reference measured in
the same run, printed with its target and pass/fail (see docs/performance.md)."""

from __future__ import annotations

import argparse
import sys

from bench.report import print_report
from bench.scenarios import SCENARIOS, run_all


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--only", action="append", choices=SCENARIOS, help="run only these")
    parser.add_argument("--seconds", type=int, default=10, help="length of each load run")
    args = parser.parse_args(argv)
    results = run_all(args.seconds, set(args.only or ()))
    print_report(results)
    return 0 if all(result.passed is not False for result in results) else 1


if __name__ == "__main__":
    sys.exit(main())
