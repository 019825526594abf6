"""Benchmark `taly local down` (and, for context, `taly local up`): a fresh estate each run.

Target (2 cores, issue 10): `taly local down` under 3 s, with nothing of the estate left running
(every recorded pid gone, every port closed). Each run brings an estate up in a temporary state
directory under /tmp (PostgreSQL runs as `postgres` when we are root: it must enter it), then times
the `down` command as a person runs it (a fresh process).

    .venv/bin/python benchmarks/bench_local.py [--runs N] [--size ROWS]

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
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _measure import log, taly  # noqa: E402

TARGET_DOWN_S = 3.0


def left_running(state: dict) -> list[str]:
    from taly_ops.local import supervisor

    return [f"{c['name']} (pid {c['pid']})" for c in state["components"] if supervisor.alive(c["pid"])] + \
        [f"port {c['port']}" for c in state["components"] if c.get("port") and supervisor.port_open(c["port"])]


def one_run(size: int) -> dict:
    root = Path(tempfile.mkdtemp(prefix="taly-bench-local-"))
    os.chmod(root, 0o755)
    state_dir = root / "state"
    try:
        up_s, up, code = taly("local", "up", "--state-dir", str(state_dir), "--size", str(size), json_out=True)
        assert code == 0 and up, f"local up failed ({code})"
        down_s, down, code = taly("local", "down", "--state-dir", str(state_dir), json_out=True)
        assert code == 0, f"local down failed ({code})"
        return {"up_s": round(up_s, 2), "down_s": round(down_s, 2), "left_running": left_running(up)}
    finally:
        if state_dir.exists():
            taly("local", "down", "--state-dir", str(state_dir))
        shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--size", type=int, default=1_000)
    args = parser.parse_args()
    runs = []
    for i in range(args.runs):
        log(f"run {i + 1} of {args.runs}")
        runs.append(one_run(args.size))
    downs = [r["down_s"] for r in runs]
    print(json.dumps({
        "runs": runs,
        "down_median_s": round(statistics.median(downs), 2), "down_max_s": max(downs),
        "up_median_s": round(statistics.median(r["up_s"] for r in runs), 2),
        "target_down_s": TARGET_DOWN_S,
        "down_meets_target": max(downs) < TARGET_DOWN_S and not any(r["left_running"] for r in runs),
    }, indent=2))


if __name__ == "__main__":
    main()
