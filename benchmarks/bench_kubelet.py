"""Benchmark the kubelet and its stand-in pods: start-to-ready time and memory (PSS) per pod.

Runs the real Store and Kubelet in this process and the ten CMS services as real stand-in processes,
two pods each (what `taly local up` runs), with the probe settings of the `local` chart values
(readiness every second from the start). Reports the time from creating the pods to every pod Ready,
one pod's create-to-Ready alone, and the proportional set size of each stand-in (target: <= 12 MB a
pod, so that twenty pods and the cluster stay under 400 MB). The pods have no dependencies here.

    .venv/bin/python benchmarks/bench_kubelet.py [--runs N] [--settle S]

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

from taly_platform.catalog import SERVICE_NAMES

TARGET_POD_PSS_MIB = 12.0
NS = "taly"


def pss_kib(pid: int) -> int:
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return 0
    return sum(int(line.split()[1]) for line in text.splitlines() if line.startswith("Pss:"))


def pod(name: str, service: str, image: str) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": NS},
            "spec": {"terminationGracePeriodSeconds": 5, "containers": [{
                "name": service, "image": image, "ports": [{"name": "http", "containerPort": 3000}],
                "env": [{"name": "TALY_SERVICE", "value": service}, {"name": "PORT", "value": "3000"}],
                "readinessProbe": {"httpGet": {"path": "/ready", "port": "http"}, "periodSeconds": 1},
                "livenessProbe": {"httpGet": {"path": "/health", "port": "http"}, "initialDelaySeconds": 2,
                                  "periodSeconds": 2}}]}}


def ready(store, names: list[str]) -> bool:
    items, _ = store.list("pods", NS)
    done = {p["metadata"]["name"] for p in items
            if any(c["type"] == "Ready" and c["status"] == "True" for c in (p.get("status") or {}).get("conditions") or [])}
    return set(names) <= done


def wait_ready(store, names: list[str], timeout: float = 60) -> float:
    t0 = time.monotonic()
    while not ready(store, names):
        if time.monotonic() - t0 > timeout:
            raise SystemExit(f"pods not ready after {timeout} s")
        time.sleep(0.01)
    return time.monotonic() - t0


def one_run(settle: float) -> dict:
    from taly_ops.local.cluster.images import ImageRegistry
    from taly_ops.local.cluster.kubelet import Kubelet
    from taly_ops.local.cluster.store import Store

    root = Path(tempfile.mkdtemp(prefix="taly-bench-kubelet-"))
    store = Store()
    store.create("namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    registry = ImageRegistry(root / "images.json")
    kubelet = Kubelet(store, registry, root).start()
    try:
        images = {s: registry.push(s, "1.0.0") for s in SERVICE_NAMES}
        store.create("pods", pod("solo", "auth", images["auth"]))
        solo = wait_ready(store, ["solo"])
        names = [f"{s}-{i}" for s in SERVICE_NAMES for i in (1, 2)]
        for name in names:
            service = name.rsplit("-", 1)[0]
            store.create("pods", pod(name, service, images[service]))
        all_ready = wait_ready(store, names)
        time.sleep(settle)   # traffic, probes and scrapes running: memory as it is in use
        pids = [pid for key, containers in kubelet.pods().items() if key[1] in names for pid in containers.values()]
        pss = sorted(pss_kib(p) / 1024 for p in pids if p)
        return {"solo_create_to_ready_s": round(solo, 3), "twenty_create_to_all_ready_s": round(all_ready, 3),
                "pods": len(pss), "pod_pss_mib_median": round(statistics.median(pss), 2),
                "pod_pss_mib_max": round(pss[-1], 2), "pods_pss_mib_total": round(sum(pss), 1),
                "kubelet_process_pss_mib": round(pss_kib(os.getpid()) / 1024, 1)}
    finally:
        kubelet.stop(grace=3)
        shutil.rmtree(root, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--settle", type=float, default=5.0, help="seconds of running before memory is read")
    args = parser.parse_args()
    runs = [one_run(args.settle) for _ in range(args.runs)]
    keys = runs[0].keys()
    summary = {k: statistics.median(r[k] for r in runs) for k in keys}
    print(json.dumps({"runs": runs, "median": summary, "target_pod_pss_mib": TARGET_POD_PSS_MIB,
                      "within_target": summary["pod_pss_mib_max"] <= TARGET_POD_PSS_MIB}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
