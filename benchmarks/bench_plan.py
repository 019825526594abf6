"""Benchmark the offline plan and the policy check on this machine.

Targets (2 cores): `taly --help` < 0.2 s; `taly plan --env all` < 8 s with the charts rendered
(< 500 MB); `taly policy check --env all` < 10 s.

Run by hand: `make bench` or `.venv/bin/python benchmarks/bench_plan.py [--runs N]`.
Prints JSON; figures go into the issue's closing note, not into assertions.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _measure import measure  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    taly = shutil.which("taly", path=str(Path(sys.executable).parent)) or "taly"
    results = [
        measure([taly, "--help"], args.runs),
        measure([taly, "plan", "--env", "all", "--output", "json"], args.runs),
        measure([taly, "plan", "--env", "prod", "--output", "json"], args.runs),
        measure([taly, "policy", "check", "--env", "all", "--output", "json"], args.runs),
    ]
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
