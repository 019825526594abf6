"""Benchmark the offline plan, the policy check and `taly --help` on this machine.

Targets (2 cores, issue 10): `taly --help` < 0.10 s; `taly plan --env all` and
`taly policy check --env all` each < 4 s and < 500 MB (peak PSS of the process tree).

The plan's `helm template` results are cached (`offline/helm_cache.py`): "warm" runs use a cache
the first run filled, "cold" runs start from an empty one each time (a first plan after a chart or
values change). The machine may be shared: the load average before and after is printed with the
figures, and the minimum is the figure least disturbed by others.

Run by hand: `make bench` or `.venv/bin/python benchmarks/bench_plan.py [--runs N] [--only help,plan-all,...]`.
Prints JSON; figures go into the issue's closing note, not into assertions.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _measure import measure  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--only", default="", help="comma-separated names (default: all)")
    args = parser.parse_args()
    taly = shutil.which("taly", path=str(Path(sys.executable).parent)) or "taly"
    warm = tempfile.mkdtemp(prefix="taly-bench-cache-")
    cases = {
        "help": ([taly, "--help"], None),
        "plan-all": ([taly, "plan", "--env", "all", "--output", "json"], warm),
        "plan-all-cold": ([taly, "plan", "--env", "all", "--output", "json"], "cold"),
        "plan-prod": ([taly, "plan", "--env", "prod", "--output", "json"], warm),
        "policy-all": ([taly, "policy", "check", "--env", "all", "--output", "json"], warm),
    }
    wanted = [n for n in args.only.split(",") if n] or list(cases)
    results = []
    try:
        for name in wanted:
            cmd, cache = cases[name]
            load_before = os.getloadavg()[0]
            if cache == "cold":
                walls = []
                for _ in range(args.runs):  # a fresh, empty cache for every run
                    with tempfile.TemporaryDirectory(prefix="taly-bench-cold-") as cold:
                        walls.append(measure(cmd, 1, env={"TALY_CACHE_DIR": cold}))
                result = {**walls[0], "runs": args.runs,
                          "wall_median_s": sorted(w["wall_median_s"] for w in walls)[len(walls) // 2],
                          "wall_min_s": min(w["wall_min_s"] for w in walls),
                          "wall_max_s": max(w["wall_max_s"] for w in walls),
                          "peak_tree_pss_mib_median": sorted(w["peak_tree_pss_mib_median"] for w in walls)[len(walls) // 2]}
            else:
                env = {"TALY_CACHE_DIR": cache} if cache else None
                if cache:
                    measure(cmd, 1, env=env)  # fill the cache
                result = measure(cmd, args.runs, env=env)
            results.append({"name": name, **result, "load_before": round(load_before, 2),
                            "load_after": round(os.getloadavg()[0], 2)})
    finally:
        shutil.rmtree(warm, ignore_errors=True)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
