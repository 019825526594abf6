"""Run a command several times; report median wall time and the peak memory (PSS) of its process tree."""

from __future__ import annotations

import os
import statistics
import subprocess
import threading
import time
from pathlib import Path


def _tree_pss_kib(pid: int) -> int:
    """Proportional set size of a process and all its descendants, from /proc.

    PSS, not RSS: forked workers share their parent's pages, and RSS would count them once per process.
    """
    total, stack = 0, [pid]
    while stack:
        p = stack.pop()
        try:
            rollup = Path(f"/proc/{p}/smaps_rollup").read_text()
            total += next(int(l.split()[1]) for l in rollup.splitlines() if l.startswith("Pss:"))
            for task in Path(f"/proc/{p}/task").iterdir():
                stack += [int(c) for c in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError, StopIteration):
            continue
    return total


def measure(cmd: list[str], runs: int, env: dict[str, str] | None = None) -> dict:
    walls, peaks = [], []
    for _ in range(runs):
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env={**os.environ, **(env or {})})
        peak = 0
        done = threading.Event()

        def sample() -> None:
            nonlocal peak
            while not done.is_set():
                peak = max(peak, _tree_pss_kib(proc.pid))
                time.sleep(0.02)

        sampler = threading.Thread(target=sample)
        sampler.start()
        _, err = proc.communicate()
        done.set()
        sampler.join()
        walls.append(time.perf_counter() - start)
        peaks.append(peak)
        if proc.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}): {err.decode()[-500:]}")
    return {
        "command": " ".join(cmd),
        "runs": runs,
        "wall_median_s": round(statistics.median(walls), 3),
        "wall_min_s": round(min(walls), 3),
        "wall_max_s": round(max(walls), 3),
        "peak_tree_pss_mib_median": round(statistics.median(peaks) / 1024, 1),
    }
