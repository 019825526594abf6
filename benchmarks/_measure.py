"""What the benchmarks share: run a command several times (median wall time, peak PSS of its process
tree), and run the taly CLI once, timed, with its JSON output parsed."""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path


def _same_address_space(a: int, b: int) -> bool:
    """Whether two processes share one address space: a vfork'd child, between its fork and its exec.

    Linux's kcmp(2) with KCMP_VM; False where it is not available.
    """
    import ctypes
    import platform

    if platform.machine() != "x86_64":
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.syscall(312, a, b, 1, 0, 0) == 0  # SYS_kcmp on x86_64, KCMP_VM
    except (OSError, AttributeError):
        return False


def _tree_pss_kib(pid: int) -> int:
    """Proportional set size of a process and all its descendants, from /proc.

    PSS, not RSS: forked workers share their parent's pages, and RSS would count them once per process.
    A child that shares its parent's address space (Python's subprocess vforks before it execs helm,
    pg_dump...) reports the parent's memory again: it is counted once.
    """
    total, stack = 0, [(pid, None)]
    while stack:
        p, parent = stack.pop()
        try:
            if parent is None or not _same_address_space(parent, p):
                rollup = Path(f"/proc/{p}/smaps_rollup").read_text()
                total += next(int(l.split()[1]) for l in rollup.splitlines() if l.startswith("Pss:"))
            for task in Path(f"/proc/{p}/task").iterdir():
                stack += [(int(c), p) for c in (task / "children").read_text().split()]
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


def log(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def taly(*args: str, json_out: bool = False, env: dict[str, str] | None = None,
         timeout: float = 7200) -> tuple[float, dict | None, int]:
    """Run the taly CLI (next to this interpreter): (wall seconds, parsed JSON stdout or None, exit code).

    Interrupted (or too slow), it is sent SIGTERM, so it tears down what it started (a drill's or a
    refresh's scratch instance) before this re-raises.
    """
    exe = shutil.which("taly", path=str(Path(sys.executable).parent)) or "taly"
    argv = [exe, *args] + (["--output", "json"] if json_out else [])
    log("$ " + " ".join(argv))
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=None, text=True, env={**os.environ, **(env or {})})
    try:
        stdout, _ = proc.communicate(timeout=timeout)
    except BaseException:
        proc.terminate()
        try:
            proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        raise
    wall = time.perf_counter() - t0
    data = None
    if json_out and stdout.strip():
        try:
            data = json.loads(stdout)
        except json.JSONDecodeError:
            pass
    return wall, data, proc.returncode
