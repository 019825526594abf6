"""Benchmark the local cluster's API server: a list of 500 pods over HTTPS, and 20 concurrent watches.

Targets (2 cores): listing 500 pods answers in under 50 ms (median, keep-alive connection, the
body read whole); 20 watches open at once all receive the event of one new pod. The server runs
in a process of its own, as in `taly local up` (the store filled with 500 pods shaped as the
kubelet writes them), so that the client's work does not share its interpreter. Also reported:
the server process's PSS and whether it loaded the kubernetes client (it must not). Run by hand:

    .venv/bin/python benchmarks/bench_kube_api.py [--runs N] [--pods N] [--watches N]

Prints JSON; figures go into the issue's closing note, not into assertions.
"""

from __future__ import annotations

import argparse
import http.client
import json
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _measure import _tree_pss_kib  # noqa: E402

TOKEN = "bench-token"
TARGET_LIST_MS = 50.0


def pod(i: int) -> dict:
    name = f"web-7d4b9c8f6d-{i:05d}"
    return {
        "metadata": {"name": name, "namespace": "default", "labels": {"app": "web", "pod-template-hash": "7d4b9c8f6d"},
                     "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-7d4b9c8f6d",
                                          "uid": "00000000-0000-0000-0000-000000000001", "controller": True}]},
        "spec": {"containers": [{
            "name": "web", "image": "registry.local/taly/web:1.4.2@sha256:" + "ab" * 32,
            "ports": [{"containerPort": 8080, "name": "http"}],
            "env": [{"name": f"VAR_{k}", "value": f"value-{k}"} for k in range(8)],
            "readinessProbe": {"httpGet": {"path": "/ready", "port": "http"}, "periodSeconds": 2},
            "livenessProbe": {"httpGet": {"path": "/health", "port": "http"}, "periodSeconds": 5},
            "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}}}]},
    }


def pod_status(i: int) -> dict:
    now = "2025-01-01T00:00:00Z"
    return {"phase": "Running", "podIP": f"127.0.{i // 250 + 1}.{i % 250 + 1}", "startTime": now,
            "conditions": [{"type": t, "status": "True", "lastTransitionTime": now}
                           for t in ("PodScheduled", "Initialized", "ContainersReady", "Ready")],
            "containerStatuses": [{"name": "web", "ready": True, "restartCount": 0, "started": True,
                                   "image": "registry.local/taly/web:1.4.2", "imageID": "sha256:" + "ab" * 32,
                                   "containerID": f"taly://{i}", "state": {"running": {"startedAt": now}}}]}


def serve(port: int, directory: Path, pods: int) -> None:
    """The server process: a store with `pods` pods, then the API server until stdin closes."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "cli"))
    from taly_ops.local.cluster.server import ApiServer
    from taly_ops.local.cluster.store import Store

    store = Store()
    for i in range(pods):
        store.create("pods", pod(i))
        store.mutate("pods", "default", pod(i)["metadata"]["name"], lambda o, i=i: o.update(status=pod_status(i)),
                     subresource="status")
    server = ApiServer(store, TOKEN, port=port, tls=(directory / "server.crt", directory / "server.key")).start()
    print(json.dumps({"url": server.url, "kubernetes_client_loaded": "kubernetes" in sys.modules}), flush=True)
    sys.stdin.read()
    server.stop()


def connection(port: int, directory: Path) -> http.client.HTTPSConnection:
    context = ssl.create_default_context(cafile=str(directory / "server.crt"))
    return http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=30)


def get(conn: http.client.HTTPSConnection, path: str) -> bytes:
    conn.request("GET", path, headers={"Authorization": f"Bearer {TOKEN}", "Accept": "application/json"})
    response = conn.getresponse()
    body = response.read()
    if response.status != 200:
        raise SystemExit(f"GET {path}: {response.status} {body[:200]!r}")
    return body


def list_pods(port: int, directory: Path, runs: int) -> dict:
    conn = connection(port, directory)
    get(conn, "/api/v1/namespaces/default/pods")  # the TLS handshake and a warm cache, not measured
    walls, size, count = [], 0, 0
    for _ in range(runs):
        t0 = time.perf_counter()
        body = get(conn, "/api/v1/namespaces/default/pods")
        walls.append((time.perf_counter() - t0) * 1000)
        size, count = len(body), len(json.loads(body)["items"])
    conn.close()
    median = statistics.median(walls)
    return {"items": count, "bytes": size, "median_ms": round(median, 1), "max_ms": round(max(walls), 1),
            "target_ms": TARGET_LIST_MS, "ok": median < TARGET_LIST_MS and count > 0}


def watches(port: int, directory: Path, n: int) -> dict:
    """n watches open at once; one pod created; when did each see its ADDED event?"""
    opened, seen = threading.Barrier(n + 1), [None] * n

    def watch(k: int) -> None:
        conn = connection(port, directory)
        rv = json.loads(get(conn, "/api/v1/namespaces/default/pods?limit=1"))["metadata"]["resourceVersion"]
        conn.request("GET", f"/api/v1/namespaces/default/pods?watch=true&resourceVersion={rv}&timeoutSeconds=30",
                     headers={"Authorization": f"Bearer {TOKEN}"})
        response = conn.getresponse()
        opened.wait()
        line = response.readline()
        seen[k] = (time.perf_counter(), json.loads(line)["type"] if line else None)
        conn.close()

    threads = [threading.Thread(target=watch, args=(k,)) for k in range(n)]
    for t in threads:
        t.start()
    opened.wait()
    time.sleep(0.2)  # every watch is waiting on its response
    conn = connection(port, directory)
    body = json.dumps(pod(99999)).encode()
    t0 = time.perf_counter()
    conn.request("POST", "/api/v1/namespaces/default/pods", body=body,
                 headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
    conn.getresponse().read()
    for t in threads:
        t.join(30)
    got = [s for s in seen if s and s[1] == "ADDED"]
    latencies = [(s[0] - t0) * 1000 for s in got]
    return {"watches": n, "received": len(got), "ok": len(got) == n,
            "max_latency_ms": round(max(latencies), 1) if latencies else None,
            "median_latency_ms": round(statistics.median(latencies), 1) if latencies else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--pods", type=int, default=500)
    parser.add_argument("--watches", type=int, default=20)
    parser.add_argument("--serve", nargs=2, metavar=("PORT", "DIR"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        return serve(int(args.serve[0]), Path(args.serve[1]), args.pods)

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "cli"))
    from taly_ops.local import supervisor, tls

    with tempfile.TemporaryDirectory(prefix="bench-kube-") as tmp:
        directory = Path(tmp)
        tls.write_server_certificate(directory, lambda path: None)
        port = supervisor.free_port()
        t0 = time.perf_counter()
        proc = subprocess.Popen([sys.executable, __file__, "--pods", str(args.pods), "--serve", str(port), tmp],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        try:
            started = json.loads(proc.stdout.readline())
            fill_s = time.perf_counter() - t0
            result = {"pods": args.pods, "server_start_and_fill_s": round(fill_s, 2),
                      "kubernetes_client_loaded_by_server": started["kubernetes_client_loaded"],
                      "list": list_pods(port, directory, args.runs),
                      "watch": watches(port, directory, args.watches),
                      "server_pss_mib": round(_tree_pss_kib(proc.pid) / 1024, 1)}
        finally:
            proc.stdin.close()
            proc.wait(10)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
