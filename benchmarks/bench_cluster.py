"""Benchmark the local cluster: `taly local up` with all ten services ready, the cluster's memory, a rolling
update measured by `kubectl rollout status`, and `taly local down` leaving no process.

Targets (2 cores, issue 11):
- `taly local up` (a fresh estate, the cluster's ten Deployments available) under 12 s;
- the cluster's memory in all (API server, controllers, kubelet and every pod: the PSS of the cluster
  process's tree, which holds the pods) under 400 MB, sampled while it runs;
- a rolling update of one service (2 replicas) to another healthy image, from `kubectl set image` until
  `kubectl rollout status` returns, under 5 s;
- after `taly local down`, no process of the cluster's process group.

    .venv/bin/python benchmarks/bench_cluster.py [--runs N] [--rollouts N] [--service NAME]

Prints JSON; figures go into the issue's closing note, not into assertions.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _measure import _tree_pss_kib, log, taly  # noqa: E402

TARGET_UP_S = 12.0
TARGET_MEMORY_MB = 400.0
TARGET_ROLLOUT_S = 5.0
ROOT = Path(__file__).resolve().parents[1]


def kubectl(state_dir: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("kubectl") or str(ROOT / ".tools" / "bin" / "kubectl")
    env = {**os.environ, "KUBECONFIG": str(state_dir / "kubeconfig")}
    done = subprocess.run([exe, "--context", "taly-local", "-n", "taly", *args], capture_output=True, text=True,
                          env=env, timeout=timeout)
    if done.returncode != 0:
        raise SystemExit(f"kubectl {' '.join(args)} failed: {done.stdout}{done.stderr}")
    return done


def memory_mb(pid: int, seconds: float = 5.0) -> tuple[float, float]:
    """(median, peak) PSS of the cluster process's tree over `seconds`, in MB (MiB)."""
    samples = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        samples.append(_tree_pss_kib(pid) / 1024)
        time.sleep(0.25)
    return round(statistics.median(samples), 1), round(max(samples), 1)


def processes(pid: int) -> int:
    """How many processes the cluster's tree holds (itself and every pod's)."""
    count, stack = 0, [pid]
    while stack:
        p = stack.pop()
        count += 1
        try:
            for task in Path(f"/proc/{p}/task").iterdir():
                stack += [int(c) for c in (task / "children").read_text().split()]
        except FileNotFoundError:
            continue
    return count


def rollouts(state_dir: Path, service: str, n: int) -> list[float]:
    """Roll `service` between two healthy images n times; the seconds from set image to rollout status."""
    from taly_ops.local.cluster.images import ImageRegistry
    from taly_ops.local.kube import images_path

    registry = ImageRegistry(images_path(state_dir))
    refs = [registry.push(service, tag) for tag in ("1.0.1", "1.0.0")]
    seconds = []
    for i in range(n):
        t0 = time.perf_counter()
        kubectl(state_dir, "set", "image", f"deployment/{service}", f"{service}={refs[i % 2]}")
        kubectl(state_dir, "rollout", "status", f"deployment/{service}", "--timeout", "60s")
        seconds.append(round(time.perf_counter() - t0, 2))
        log(f"rollout {i + 1}: {seconds[-1]} s")
    return seconds


def group_left(pgid: int) -> list[int]:
    from taly_ops.local import supervisor

    return supervisor.group_members(pgid)


def one_run(rollout_count: int, service: str) -> dict:
    root = Path(tempfile.mkdtemp(prefix="taly-bench-cluster-"))
    os.chmod(root, 0o755)
    state_dir = root / "state"
    try:
        up_s, up, code = taly("local", "up", "--state-dir", str(state_dir), json_out=True)
        assert code == 0 and up, f"local up failed ({code})"
        cluster = next(c for c in up["components"] if c["name"] == "kube")
        pods = json.loads(kubectl(state_dir, "get", "pods", "-o", "json").stdout)["items"]
        median_mb, peak_mb = memory_mb(cluster["pid"])
        result = {"up_s": round(up_s, 2), "pods": len(pods), "cluster_processes": processes(cluster["pid"]),
                  "cluster_pss_mb_median": median_mb, "cluster_pss_mb_peak": peak_mb}
        result["rollout_s"] = rollouts(state_dir, service, rollout_count)
        from taly_ops.local.state import load

        pgid = load(state_dir).component("kube").pgid
        down_s, _, code = taly("local", "down", "--state-dir", str(state_dir), json_out=True)
        assert code == 0, f"local down failed ({code})"
        result |= {"down_s": round(down_s, 2), "left_in_cluster_group": group_left(pgid)}
        return result
    finally:
        if state_dir.exists():
            taly("local", "down", "--state-dir", str(state_dir))
        shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="fresh estates (each: up, memory, rollouts, down)")
    parser.add_argument("--rollouts", type=int, default=3, help="rolling updates per estate")
    parser.add_argument("--service", default="search", help="the service rolled")
    args = parser.parse_args()
    runs = []
    for i in range(args.runs):
        log(f"run {i + 1} of {args.runs}")
        runs.append(one_run(args.rollouts, args.service))
    ups = [r["up_s"] for r in runs]
    peaks = [r["cluster_pss_mb_peak"] for r in runs]
    rolls = [s for r in runs for s in r["rollout_s"]]
    print(json.dumps({
        "runs": runs,
        "up_median_s": round(statistics.median(ups), 2), "up_max_s": max(ups), "target_up_s": TARGET_UP_S,
        "cluster_pss_mb_max": max(peaks), "target_memory_mb": TARGET_MEMORY_MB,
        "rollout_median_s": round(statistics.median(rolls), 2), "rollout_max_s": max(rolls),
        "target_rollout_s": TARGET_ROLLOUT_S,
        "meets_targets": (max(ups) < TARGET_UP_S and max(peaks) < TARGET_MEMORY_MB and max(rolls) < TARGET_ROLLOUT_S
                          and not any(r["left_in_cluster_group"] for r in runs)),
    }, indent=2))


if __name__ == "__main__":
    main()
