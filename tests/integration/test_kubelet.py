"""The kubelet with the real Store and real stand-in processes: readiness, metrics, crash loops, pulls,
restarts, liveness, graceful deletion, and a dependency dying under a running pod.

The healthy pods' dependencies are the shared local estate's PostgreSQL, Redis and RabbitMQ, given the
way the chart gives them (a ConfigMap and a Secret by envFrom); the dead-dependency test starts a
Redis of its own and stops exactly that one.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pytest

from taly_ops.local import supervisor
from taly_ops.local.cluster.apierrors import ApiError
from taly_ops.local.cluster.containers import Launch, spawn, spawn_standin
from taly_ops.local.cluster.images import ImageRegistry
from taly_ops.local.cluster.kubelet import Kubelet, log_path
from taly_ops.local.cluster.store import Store

pytestmark = pytest.mark.integration
NS = "taly"


@dataclass
class Cluster:
    store: Store
    registry: ImageRegistry
    kubelet: Kubelet
    directory: Path
    events: list[tuple[str, str, str, str]] = field(default_factory=list)   # (pod, type, reason, message)

    def pod(self, name: str) -> dict[str, Any] | None:
        try:
            return self.store.get("pods", NS, name)
        except ApiError as exc:
            assert exc.code == 404, exc
            return None

    def container(self, name: str) -> dict[str, Any]:
        statuses = ((self.pod(name) or {}).get("status") or {}).get("containerStatuses") or [{}]
        return statuses[0]

    def condition(self, name: str, ctype: str) -> str | None:
        for c in ((self.pod(name) or {}).get("status") or {}).get("conditions") or []:
            if c["type"] == ctype:
                return c["status"]
        return None

    def pid(self, name: str) -> int | None:
        return next(iter(self.kubelet.pods().get((NS, name), {}).values()), None)

    def count(self, name: str, reason: str, text: str = "") -> int:
        return sum(1 for pod, _, r, m in self.events if pod == name and r == reason and text in m)


def wait_for(check: Callable[[], Any], what: str, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.05)


def make_cluster(root: Path, launcher=spawn_standin, backoff_base: float = 1.0, events_in_store: bool = False) -> Cluster:
    """events_in_store: the kubelet's own recorder (Event objects); else `Cluster.events`, a list."""
    store = Store()
    store.create("namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    registry = ImageRegistry(root / "images.json")
    cluster = Cluster(store, registry, None, root)  # type: ignore[arg-type]
    cluster.kubelet = Kubelet(store, registry, root, backoff_base=backoff_base, launcher=launcher,
                              recorder=None if events_in_store else
                              lambda pod, t, r, m: cluster.events.append((pod["metadata"]["name"], t, r, m)))
    cluster.kubelet.start()
    return cluster


@pytest.fixture
def cluster(tmp_path):
    c = make_cluster(tmp_path)
    yield c
    c.kubelet.stop(grace=2)


def config(store: Store, service: str, data: dict[str, str], secret: dict[str, str] | None = None) -> None:
    """The chart's <service>-config ConfigMap (and <service>-secrets Secret, as external-secrets would sync it)."""
    store.create("configmaps", {"apiVersion": "v1", "kind": "ConfigMap",
                                "metadata": {"name": f"{service}-config", "namespace": NS},
                                "data": {"TALY_SERVICE": service, "PORT": "3000", **data}})
    if secret is not None:
        store.create("secrets", {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": f"{service}-secrets",
                                                                                   "namespace": NS},
                                 "data": {k: base64.b64encode(v.encode()).decode() for k, v in secret.items()}})


def pod(name: str, service: str, image: str, *, liveness_path: str = "/health", grace: int = 5) -> dict[str, Any]:
    """A pod as the chart's Deployment template makes them, with the short probe periods of `local`."""
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": NS,
                                                           "labels": {"app.kubernetes.io/name": service}},
            "spec": {"terminationGracePeriodSeconds": grace, "containers": [{
                "name": service, "image": image, "ports": [{"name": "http", "containerPort": 3000, "protocol": "TCP"}],
                "envFrom": [{"configMapRef": {"name": f"{service}-config"}},
                            {"secretRef": {"name": f"{service}-secrets", "optional": True}}],
                "livenessProbe": {"httpGet": {"path": liveness_path, "port": "http"}, "initialDelaySeconds": 1,
                                  "periodSeconds": 1, "timeoutSeconds": 1, "failureThreshold": 2},
                "readinessProbe": {"httpGet": {"path": "/ready", "port": "http"}, "periodSeconds": 1,
                                   "timeoutSeconds": 1, "failureThreshold": 1},
            }]}}


def get(url: str) -> tuple[int, dict[str, str], str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, dict(r.headers), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read().decode()


def estate_config(state) -> tuple[dict[str, str], dict[str, str]]:
    """The settings (ConfigMap) and credentials (Secret) of a service using all three of the estate's servers."""
    e = state.endpoints
    pg, rabbit = e["postgres"]["primary"], e["rabbitmq"]
    return ({"DATABASE_HOST": pg["host"], "DATABASE_PORT": str(pg["port"]), "DATABASE_NAME": pg["database"],
             "REDIS_HOST": e["redis"]["primary"]["host"], "REDIS_PORT": str(e["redis"]["primary"]["port"]),
             "AMQP_ENDPOINT": f"amqp://{rabbit['host']}:{rabbit['amqp_port']}",
             "AMQP_MANAGEMENT_URL": rabbit["management_url"]},
            {"REDIS_PASSWORD": e["redis"]["password"], "AMQP_USERNAME": rabbit["user"],
             "AMQP_PASSWORD": rabbit["password"]})


def metrics_of(cluster: Cluster, name: str) -> str:
    ip = cluster.pod(name)["status"]["podIP"]
    status, _, text = get(f"http://{ip}:3000/metrics")
    assert status == 200
    return text


# --- a healthy pod ------------------------------------------------------------------------------------------------

def test_a_healthy_pod_becomes_ready_with_its_dependencies_and_serves_metrics_promtool_accepts(cluster, local_estate):
    settings, credentials = estate_config(local_estate)
    config(cluster.store, "auth", settings, credentials)
    image = cluster.registry.push("auth", "1.4.2")
    cluster.store.create("pods", pod("auth-1", "auth", image))

    wait_for(lambda: cluster.condition("auth-1", "Ready") == "True", "auth-1 Ready")
    status = cluster.pod("auth-1")["status"]
    c = status["containerStatuses"][0]
    assert status["phase"] == "Running" and status["podIP"].startswith("127.0.") and status["hostIP"] == "127.0.0.1"
    assert c["ready"] and c["started"] and c["restartCount"] == 0 and "running" in c["state"]
    assert c["image"] == image and c["imageID"] == image.replace(":1.4.2@", "@")
    assert c["containerID"].startswith("taly://")
    assert {x["type"]: x["status"] for x in status["conditions"]} == {
        "PodReadyToStartContainers": "True", "Initialized": "True", "Ready": "True", "ContainersReady": "True",
        "PodScheduled": "True"}

    ip = status["podIP"]
    code, headers, body = get(f"http://{ip}:3000/ready")
    assert code == 200 and headers["X-Taly-Version"] == "1.4.2"
    assert json.loads(body)["dependencies"] == ["broker", "cache", "database"]
    def traffic_seen() -> str | None:
        text = metrics_of(cluster, "auth-1")
        return text if "http_request_duration_seconds_bucket{" in text else None  # once ready, it serves itself

    text = wait_for(traffic_seen, "synthetic traffic in the metrics")
    checked = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True, timeout=30)
    assert checked.returncode == 0 and not checked.stdout.strip() and not checked.stderr.strip(), checked
    assert 'taly_build_info{service="auth",version="1.4.2"} 1' in text
    for dep in ("database", "cache", "broker"):
        assert f'taly_dependency_up{{service="auth",dependency="{dep}"}} 1' in text
    assert 'http_request_duration_seconds_bucket{service="auth",version="1.4.2",method=' in text
    log = log_path(cluster.directory, NS, "auth-1", "auth").read_text()
    assert "auth 1.4.2 (healthy) listening on " + ip in log


def test_a_pod_consumes_its_work_queue_over_amqp(cluster, local_estate):
    """A consumer the broker counts (what `taly health` checks), on a queue of this test's own: the estate's
    cluster already consumes the work queues."""
    rabbit = local_estate.endpoints["rabbitmq"]
    auth = "Basic " + base64.b64encode(f"{rabbit['user']}:{rabbit['password']}".encode()).decode()

    def management(method: str, path: str, body: dict | None = None):
        request = urllib.request.Request(f"{rabbit['management_url']}api/{path}", method=method,
                                         data=json.dumps(body).encode() if body is not None else None,
                                         headers={"Content-Type": "application/json", "Authorization": auth})
        with urllib.request.urlopen(request, timeout=10) as r:
            raw = r.read()
            return json.loads(raw) if raw else None

    queue = "taly.kubelet-test"
    management("PUT", f"queues/%2F/{queue}", {"durable": False, "auto_delete": False})
    try:
        settings, credentials = estate_config(local_estate)
        config(cluster.store, "worker", settings | {"TALY_QUEUE": queue}, credentials)
        cluster.store.create("pods", pod("worker-1", "worker", cluster.registry.push("worker", "3.0")))
        wait_for(lambda: cluster.condition("worker-1", "Ready") == "True", "worker-1 Ready")
        wait_for(lambda: management("GET", f"queues/%2F/{queue}").get("consumers") == 1, "the broker to count it")
        routed = management("POST", "exchanges/%2F/amq.default/publish", {
            "properties": {}, "routing_key": queue, "payload": "job", "payload_encoding": "string"})
        assert routed["routed"] is True

        def consumed() -> int:
            prefix = 'taly_queue_messages_total{service="worker",direction="consumed"} '
            lines = [line for line in metrics_of(cluster, "worker-1").splitlines() if line.startswith(prefix)]
            assert len(lines) == 1
            return int(lines[0].removeprefix(prefix))

        wait_for(consumed, "the worker to consume the job")
    finally:
        management("DELETE", f"queues/%2F/{queue}")


# --- bad images ----------------------------------------------------------------------------------------------------

def test_a_crash_image_reaches_crash_loop_back_off_with_its_last_termination(cluster):
    config(cluster.store, "booking", {})
    cluster.store.create("pods", pod("booking-1", "booking", cluster.registry.push("booking", "2.0", behaviour="crash")))

    c = wait_for(lambda: (s := cluster.container("booking-1")).get("state", {}).get("waiting", {}).get("reason")
                 == "CrashLoopBackOff" and s, "CrashLoopBackOff")
    assert c["restartCount"] >= 1 and not c["ready"]
    last = c["lastState"]["terminated"]
    assert last["exitCode"] == 1 and last["reason"] == "Error" and last["finishedAt"] >= last["startedAt"]
    assert c["state"]["waiting"]["message"].startswith("back-off ")
    assert cluster.pod("booking-1")["status"]["phase"] == "Running"
    assert cluster.condition("booking-1", "Ready") == "False"
    assert cluster.count("booking-1", "BackOff", "Back-off restarting failed container booking") >= 1
    assert "crashes at start" in log_path(cluster.directory, NS, "booking-1", "booking").read_text()


def test_an_unknown_image_is_image_pull_back_off_and_pending_until_it_is_pushed(cluster):
    config(cluster.store, "users", {})
    ref = cluster.registry.push("users", "1.0").replace(":1.0@", ":1.1@").rsplit("@", 1)[0]  # a tag never pushed
    cluster.store.create("pods", pod("users-1", "users", ref))

    wait_for(lambda: cluster.count("users-1", "Failed", "Error: ErrImagePull"), "ErrImagePull")
    c = wait_for(lambda: (s := cluster.container("users-1")).get("state", {}).get("waiting", {}).get("reason")
                 == "ImagePullBackOff" and s, "ImagePullBackOff")
    assert c["state"]["waiting"]["message"] == f'Back-off pulling image "{ref}"'
    assert c["imageID"] == "" and "containerID" not in c and c["restartCount"] == 0
    assert cluster.pod("users-1")["status"]["phase"] == "Pending" and cluster.pid("users-1") is None

    cluster.registry.push("users", "1.1")
    wait_for(lambda: cluster.condition("users-1", "Ready") == "True", "users-1 Ready once its image exists")


def test_a_never_ready_image_runs_but_is_never_ready(cluster):
    config(cluster.store, "search", {})
    cluster.store.create("pods", pod("search-1", "search", cluster.registry.push("search", "5.0", behaviour="never-ready")))

    wait_for(lambda: cluster.count("search-1", "Unhealthy", "HTTP probe failed with statuscode: 503") >= 3,
             "three failed readiness probes")
    c = cluster.container("search-1")
    assert "running" in c["state"] and not c["ready"] and c["started"] and c["restartCount"] == 0
    assert cluster.pod("search-1")["status"]["phase"] == "Running"
    assert cluster.condition("search-1", "Ready") == "False" and cluster.condition("search-1", "ContainersReady") == "False"


# --- restarts --------------------------------------------------------------------------------------------------------

def test_a_killed_process_is_restarted_and_ready_again(cluster):
    config(cluster.store, "catalog", {})
    cluster.store.create("pods", pod("catalog-1", "catalog", cluster.registry.push("catalog", "1.0")))
    wait_for(lambda: cluster.condition("catalog-1", "Ready") == "True", "catalog-1 Ready")
    first = cluster.pid("catalog-1")

    os.kill(first, signal.SIGKILL)
    c = wait_for(lambda: (s := cluster.container("catalog-1")).get("restartCount") == 1 and s.get("ready") and s,
                 "catalog-1 restarted and ready")
    assert c["lastState"]["terminated"]["exitCode"] == 137 and c["lastState"]["terminated"]["reason"] == "Error"
    assert cluster.pid("catalog-1") not in (None, first)


def test_a_failing_liveness_probe_restarts_the_container(cluster):
    config(cluster.store, "content", {})
    cluster.store.create("pods", pod("content-1", "content", cluster.registry.push("content", "1.0"),
                                     liveness_path="/missing"))
    wait_for(lambda: cluster.container("content-1").get("restartCount", 0) >= 1, "a restart for liveness")
    assert cluster.count("content-1", "Unhealthy", "Liveness probe failed: HTTP probe failed with statuscode: 404") >= 2
    assert cluster.count("content-1", "Killing", "Container content failed liveness probe, will be restarted") >= 1
    assert cluster.container("content-1")["lastState"]["terminated"]["exitCode"] == 0   # it stopped on SIGTERM


# --- deletion ----------------------------------------------------------------------------------------------------------

def test_graceful_deletion_stops_the_process_and_removes_the_pod(cluster):
    config(cluster.store, "payment", {})
    cluster.store.create("pods", pod("payment-1", "payment", cluster.registry.push("payment", "1.0")))
    wait_for(lambda: cluster.condition("payment-1", "Ready") == "True", "payment-1 Ready")
    pid = cluster.pid("payment-1")
    ip = cluster.pod("payment-1")["status"]["podIP"]

    deleting = cluster.store.delete("pods", NS, "payment-1")
    assert deleting["metadata"]["deletionTimestamp"] and deleting["metadata"]["deletionGracePeriodSeconds"] == 5
    wait_for(lambda: cluster.pod("payment-1") is None, "payment-1 removed")
    assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]
    assert ip not in cluster.kubelet.ips.in_use() and (NS, "payment-1") not in cluster.kubelet.pods()
    assert cluster.count("payment-1", "Killing", "Stopping container payment") == 1


def stubborn(launch: Launch):
    """A container that ignores SIGTERM and answers every request 200: only SIGKILL stops it."""
    code = ("import http.server, signal, sys\n"
            "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
            "class H(http.server.BaseHTTPRequestHandler):\n"
            "    def do_GET(self):\n"
            "        self.send_response(200); self.end_headers(); self.wfile.write(b'ok')\n"
            f"http.server.HTTPServer(({launch.host!r}, {launch.port}), H).serve_forever()\n")
    return spawn([sys.executable, "-I", "-c", code], launch.env, launch.log)


def test_a_process_ignoring_sigterm_is_killed_after_the_grace_period(tmp_path):
    cluster = make_cluster(tmp_path, launcher=stubborn)
    try:
        config(cluster.store, "api-gateway", {})
        cluster.store.create("pods", pod("gw-1", "api-gateway", cluster.registry.push("api-gateway", "1.0"), grace=1))
        wait_for(lambda: cluster.condition("gw-1", "Ready") == "True", "gw-1 Ready")
        cluster.store.delete("pods", NS, "gw-1")
        wait_for(lambda: cluster.pod("gw-1") is None, "gw-1 removed after SIGKILL")
        assert cluster.kubelet.pods() == {}
    finally:
        cluster.kubelet.stop(grace=2)


# --- a dependency dies under a running pod -----------------------------------------------------------------------------

@pytest.fixture
def redis_server():
    """A Redis of this test's own, on a free port: (port, start(), stop()); stopped by pid at the end."""
    port = supervisor.free_port()
    workdir = tempfile.mkdtemp(prefix="taly-kubelet-redis-")
    procs: list[subprocess.Popen] = []

    def start() -> None:
        procs.append(subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                       "--appendonly", "no", "--dir", workdir], stdout=subprocess.DEVNULL))
        wait_for(lambda: supervisor.port_open(port), "redis listening")

    def stop() -> None:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()

    start()
    yield port, start, stop
    stop()


def test_a_dead_redis_makes_ready_fail_and_shows_in_the_metrics(cluster, redis_server):
    port, start, stop = redis_server
    config(cluster.store, "notification", {"REDIS_HOST": "127.0.0.1", "REDIS_PORT": str(port)})
    cluster.store.create("pods", pod("notification-1", "notification", cluster.registry.push("notification", "1.0")))
    wait_for(lambda: cluster.condition("notification-1", "Ready") == "True", "notification-1 Ready")

    stop()
    wait_for(lambda: cluster.condition("notification-1", "Ready") == "False", "not Ready once Redis is gone")
    c = cluster.container("notification-1")
    assert "running" in c["state"] and c["restartCount"] == 0     # alive: only taken out of service
    ip = cluster.pod("notification-1")["status"]["podIP"]
    code, _, body = get(f"http://{ip}:3000/ready")
    assert code == 503 and "cache" in json.loads(body)["down"]
    assert 'taly_dependency_up{service="notification",dependency="cache"} 0' in metrics_of(cluster, "notification-1")

    start()
    wait_for(lambda: cluster.condition("notification-1", "Ready") == "True", "Ready again with Redis back")


def test_without_a_recorder_the_kubelet_writes_its_events_to_the_store_counting_repeats(tmp_path):
    cluster = make_cluster(tmp_path, events_in_store=True)
    store, registry = cluster.store, cluster.registry
    try:
        config(store, "search", {})
        store.create("pods", pod("search-1", "search", registry.push("search", "5.0", behaviour="never-ready")))

        def events() -> dict[tuple[str, str], dict]:
            items, _ = store.list("events", NS)
            return {(e["reason"], e["message"]): e for e in items if e["involvedObject"]["name"] == "search-1"}

        failed = ("Unhealthy", "Readiness probe failed: HTTP probe failed with statuscode: 503")
        unhealthy = wait_for(lambda: (e := events().get(failed)) and e["count"] >= 2 and e, "a repeated Unhealthy event")
        assert unhealthy["type"] == "Warning" and unhealthy["source"]["component"] == "kubelet"
        assert unhealthy["involvedObject"]["kind"] == "Pod"
        assert {"Pulled", "Created", "Started"} <= {reason for reason, _ in events()}
    finally:
        cluster.kubelet.stop(grace=2)


def test_a_pod_with_init_containers_is_refused_clearly_not_run_half(cluster):
    config(cluster.store, "auth", {})
    spec = pod("auth-init", "auth", cluster.registry.push("auth", "1.0"))
    spec["spec"]["initContainers"] = [{"name": "migrate", "image": spec["spec"]["containers"][0]["image"]}]
    cluster.store.create("pods", spec)
    c = wait_for(lambda: (s := cluster.container("auth-init")).get("state", {}).get("waiting", {}).get("reason")
                 == "CreateContainerConfigError" and s, "the refusal")
    assert c["state"]["waiting"]["message"] == "init containers are not modelled by the local kubelet"
    assert cluster.pod("auth-init")["status"]["phase"] == "Pending" and cluster.pid("auth-init") is None
    assert cluster.condition("auth-init", "Initialized") == "False"


# --- through kubectl ---------------------------------------------------------------------------------------------------

KUBECTL = Path(__file__).resolve().parents[2] / ".tools" / "bin" / "kubectl"


@pytest.fixture
def served(tmp_path):
    """(cluster, kubectl): a cluster behind the real API server (HTTPS, a token); back-off from 30 s, so a
    crash loop stays in CrashLoopBackOff while kubectl looks."""
    import yaml

    from taly_ops.local import tls
    from taly_ops.local.cluster.server import ApiServer

    cluster = make_cluster(tmp_path, backoff_base=30.0, events_in_store=True)
    tls.write_server_certificate(tmp_path, lambda path: None)
    server = ApiServer(cluster.store, "kubelet-test-token", tls=(tmp_path / "server.crt", tmp_path / "server.key"),
                       logs=lambda ns, name, c: p if (p := log_path(cluster.directory, ns, name, c)).exists() else None)
    server.start()
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "taly-local",
        "clusters": [{"name": "local", "cluster": {"server": server.url,
                                                   "certificate-authority": str(tmp_path / "server.crt")}}],
        "users": [{"name": "local", "user": {"token": "kubelet-test-token"}}],
        "contexts": [{"name": "taly-local", "context": {"cluster": "local", "user": "local", "namespace": NS}}]}))

    def kubectl(*args: str) -> str:
        result = subprocess.run([str(KUBECTL), *args], capture_output=True, text=True, timeout=90,
                                env={"KUBECONFIG": str(kubeconfig), "HOME": str(tmp_path), "PATH": "/usr/bin:/bin"})
        assert result.returncode == 0, f"kubectl {' '.join(args)}: {result.stderr}"
        return result.stdout

    yield cluster, kubectl
    server.stop()
    cluster.kubelet.stop(grace=2)


def test_kubectl_shows_what_the_kubelet_writes(served):
    cluster, kubectl = served
    config(cluster.store, "auth", {})
    cluster.store.create("pods", pod("auth-ok", "auth", cluster.registry.push("auth", "1.0")))
    cluster.store.create("pods", pod("auth-crash", "auth", cluster.registry.push("auth", "1.1", behaviour="crash")))
    cluster.store.create("pods", pod("auth-pull", "auth", "registry.taly.local/taly/auth:9.9"))

    kubectl("wait", "--for=condition=Ready", "pod/auth-ok", "--timeout=60s")
    wait_for(lambda: cluster.container("auth-crash").get("state", {}).get("waiting", {}).get("reason")
             == "CrashLoopBackOff", "CrashLoopBackOff")
    wait_for(lambda: cluster.container("auth-pull").get("state", {}).get("waiting", {}).get("reason")
             == "ImagePullBackOff", "ImagePullBackOff")

    pods = {p["metadata"]["name"]: p for p in json.loads(kubectl("get", "pods", "-o", "json"))["items"]}
    ok = pods["auth-ok"]["status"]
    assert ok["phase"] == "Running" and ok["podIP"].startswith("127.0.") and ok["containerStatuses"][0]["ready"]
    assert pods["auth-crash"]["status"]["containerStatuses"][0]["lastState"]["terminated"]["exitCode"] == 1
    assert pods["auth-pull"]["status"]["phase"] == "Pending"

    table = {line.split()[0]: line.split() for line in kubectl("get", "pods", "--no-headers").splitlines()}
    assert table["auth-ok"][1:3] == ["1/1", "Running"]
    assert table["auth-crash"][1:3] == ["0/1", "CrashLoopBackOff"] and table["auth-crash"][3] != "0"
    assert table["auth-pull"][1:3] == ["0/1", "ImagePullBackOff"]
    wide = kubectl("get", "pod", "auth-ok", "-o", "wide", "--no-headers").split()
    assert wide[5] == ok["podIP"]

    assert "auth 1.0 (healthy) listening on" in kubectl("logs", "auth-ok")
    described = kubectl("describe", "pod", "auth-crash")
    assert "Back-off restarting failed container auth" in described and "Last State:     Terminated" in described

    kubectl("delete", "pod", "auth-ok")          # waits, as kubectl does, until the pod is gone
    assert cluster.pod("auth-ok") is None and (NS, "auth-ok") not in cluster.kubelet.pods()


def test_a_pods_image_changed_in_place_restarts_its_container_on_the_new_image(cluster):
    config(cluster.store, "users", {})
    cluster.store.create("pods", pod("users-2", "users", cluster.registry.push("users", "1.0")))
    wait_for(lambda: cluster.condition("users-2", "Ready") == "True", "users-2 Ready")
    new = cluster.registry.push("users", "2.0")

    def set_image(obj):
        obj["spec"]["containers"][0]["image"] = new
    cluster.store.mutate("pods", NS, "users-2", set_image)

    c = wait_for(lambda: (s := cluster.container("users-2")).get("image") == new and s.get("ready") and s,
                 "users-2 ready on the new image")
    assert c["restartCount"] == 1 and c["imageID"] == new.replace(":2.0@", "@")
    assert cluster.count("users-2", "Killing", "Container users definition changed, will be restarted") == 1
    code, headers, _ = get(f"http://{cluster.pod('users-2')['status']['podIP']}:3000/health")
    assert headers["X-Taly-Version"] == "2.0"
