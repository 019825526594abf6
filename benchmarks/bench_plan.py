"""Benchmark the offline plan, the policy check and `taly --help` on this machine.

Targets (2 cores, issue 10): `taly --help` < 0.10 s; `taly plan --env all` and
`taly policy check --env all` each < 4 s and < 500 MB (peak PSS of the process tree), both cold
and warm.

The plan's `helm template` results are cached (`offline/helm_cache.py`). Each plan and policy case
is measured both ways, reported as separate rows: "warm" uses a cache a first run filled (a
returning user), "cold" points TALY_CACHE_DIR at a fresh, empty directory for every run (a fresh
clone's first run, or the first plan after a chart or values change). The machine may be shared:
the load average before and after is printed with the figures, and the minimum wall time is the
figure least disturbed by others (peak PSS is not affected by load).

Run by hand: `make bench` or
`.venv/bin/python benchmarks/bench_plan.py [--runs N] [--only help,plan-all,...] [--cache warm|cold|both]`.
Prints JSON; figures go into the issue's closing note, not into assertions.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _measure import measure  # noqa: E402


def cpu_seconds() -> float:
    """CPU time (user + system) of this process's waited-for descendants so far.

    taly's plan server waits for its workers, and they for helm: the whole tree counts. A process
    nobody waits for (a daemon, multiprocessing's fork server) would not.
    """
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measured(cmd: list[str], runs: int, env: dict[str, str] | None = None) -> dict:
    """`_measure.measure`, plus the mean CPU time of a run: a figure that load disturbs far less than wall time."""
    before = cpu_seconds()
    result = measure(cmd, runs, env=env)
    return {**result, "cpu_mean_s": round((cpu_seconds() - before) / runs, 3)}


def measure_cold(cmd: list[str], runs: int) -> dict:
    """Each run with its own fresh, empty cache."""
    rows = []
    for _ in range(runs):
        with tempfile.TemporaryDirectory(prefix="taly-bench-cold-") as cold:
            rows.append(measured(cmd, 1, env={"TALY_CACHE_DIR": cold}))
    walls = [r["wall_median_s"] for r in rows]
    return {"command": rows[0]["command"], "runs": runs, "wall_median_s": round(statistics.median(walls), 3),
            "wall_min_s": min(walls), "wall_max_s": max(walls),
            "cpu_mean_s": round(statistics.mean(r["cpu_mean_s"] for r in rows), 3),
            "peak_tree_pss_mib_median": round(statistics.median(r["peak_tree_pss_mib_median"] for r in rows), 1),
            "peak_tree_pss_mib_max": max(r["peak_tree_pss_mib_median"] for r in rows)}


def measure_warm(cmd: list[str], runs: int, cache: str) -> dict:
    """Runs sharing one cache, filled by an untimed first run."""
    env = {"TALY_CACHE_DIR": cache}
    measure(cmd, 1, env=env)
    return measured(cmd, runs, env=env)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--only", default="", help="comma-separated names (default: all)")
    parser.add_argument("--cache", choices=("warm", "cold", "both"), default="both",
                        help="helm template cache state for the plan and policy cases (default: both)")
    args = parser.parse_args()
    taly = shutil.which("taly", path=str(Path(sys.executable).parent)) or "taly"
    cases = {
        "help": [taly, "--help"],
        "plan-all": [taly, "plan", "--env", "all", "--output", "json"],
        "plan-prod": [taly, "plan", "--env", "prod", "--output", "json"],
        "policy-all": [taly, "policy", "check", "--env", "all", "--output", "json"],
    }
    wanted = [n for n in args.only.split(",") if n] or list(cases)
    if unknown := [n for n in wanted if n not in cases]:
        parser.error(f"unknown case(s) {', '.join(unknown)}; known: {', '.join(cases)}")
    states = ["warm", "cold"] if args.cache == "both" else [args.cache]
    results = []
    for name in wanted:
        for state in ([None] if name == "help" else states):
            load_before = os.getloadavg()[0]
            if state is None:
                result = measured(cases[name], args.runs)
            elif state == "cold":
                result = measure_cold(cases[name], args.runs)
            else:
                with tempfile.TemporaryDirectory(prefix="taly-bench-warm-") as warm:
                    result = measure_warm(cases[name], args.runs, warm)
            results.append({"name": name, "cache": state, **result, "load_before": round(load_before, 2),
                            "load_after": round(os.getloadavg()[0], 2)})
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
