"""Benchmark `taly health --env local`: the concurrent run against the same checks one after another.

Targets (2 cores): the concurrent run takes the slowest check plus at most 150 ms, and the whole
command (a fresh process: start-up, imports, every check, rendering) stays under 1.5 s.

Uses the running local estate (--state-dir, else $TALY_LOCAL_STATE, else .taly/local); when none runs,
starts a temporary one and takes it down afterwards. Run by hand:

    .venv/bin/python benchmarks/bench_health.py [--runs N] [--state-dir DIR]

Prints JSON; figures go into the issue's closing note, not into assertions.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _measure import measure  # noqa: E402

TARGET_OVERHEAD_S = 0.150
TARGET_COMMAND_S = 1.5


def in_process(state_dir: Path, runs: int, parallel: bool) -> dict:
    from taly_ops.health.model import COMPONENTS
    from taly_ops.operations import health as ops
    from taly_ops.health.thresholds import Thresholds

    walls, slowest, codes = [], [], set()
    for _ in range(runs):
        t0 = time.perf_counter()
        report = ops.check("local", list(COMPONENTS), Thresholds(), state_dir=state_dir, parallel=parallel)
        walls.append(time.perf_counter() - t0)
        slowest.append(max(c.duration_ms for c in report.checks) / 1000)
        codes.add(report.exit_code)
    wall, slow = statistics.median(walls), statistics.median(slowest)
    return {"mode": "concurrent" if parallel else "sequential", "runs": runs, "checks": len(report.checks),
            "wall_median_s": round(wall, 3), "wall_min_s": round(min(walls), 3), "wall_max_s": round(max(walls), 3),
            "slowest_check_median_s": round(slow, 3), "overhead_over_slowest_s": round(wall - slow, 3),
            "exit_codes": sorted(codes)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--state-dir", type=Path, default=None)
    args = parser.parse_args()

    from taly_ops.local import estate
    from taly_ops.local.state import load, resolve_state_dir

    state_dir = resolve_state_dir(args.state_dir)
    state = load(state_dir) if state_dir.is_dir() else None
    temporary = None
    if state is None or state.dead() or state.phase != "running":
        temporary = Path(tempfile.mkdtemp(prefix="taly-bench-health-"))
        os.chmod(temporary, 0o755)  # as root, PostgreSQL runs as `postgres` and must enter it
        state_dir = temporary / "state"
        print(f"no running local estate: starting one in {state_dir}", file=sys.stderr)
        estate.up(state_dir, size=1000, progress=lambda line: print(line, file=sys.stderr))
    try:
        taly = shutil.which("taly", path=str(Path(sys.executable).parent)) or "taly"
        in_process(state_dir, 1, True)  # warm-up: imports and first connections
        concurrent = in_process(state_dir, args.runs, True)
        sequential = in_process(state_dir, max(1, min(args.runs, 3)), False)
        command = measure([taly, "health", "--env", "local", "--state-dir", str(state_dir), "--output", "json"],
                          args.runs)
        result = {
            "concurrent": concurrent,
            "sequential": sequential,
            "speedup": round(sequential["wall_median_s"] / concurrent["wall_median_s"], 1),
            "command": command,
            "targets": {
                "overhead_over_slowest_s": TARGET_OVERHEAD_S,
                "overhead_met": concurrent["overhead_over_slowest_s"] <= TARGET_OVERHEAD_S,
                "command_s": TARGET_COMMAND_S,
                "command_met": command["wall_median_s"] < TARGET_COMMAND_S,
            },
        }
        print(json.dumps(result, indent=2))
    finally:
        if temporary is not None:
            estate.down(state_dir)
            shutil.rmtree(temporary, ignore_errors=True)


if __name__ == "__main__":
    main()
