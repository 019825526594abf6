"""Fidelity of the local cluster's API server, judged only by clients nobody here wrote.

The server runs in-process over real HTTPS on loopback (kubectl sends a bearer token only over TLS)
with a fresh store per test; no controllers and no kubelet run, so the tests create ReplicaSets and
pods themselves. Every assertion is about what the official Python client or kubectl 1.35 sees.
"""

from __future__ import annotations

import json
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

from taly_ops.local import tls
from taly_ops.local.cluster.server import ApiServer
from taly_ops.local.cluster.store import Store

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
KUBECTL = ROOT / ".tools" / "bin" / "kubectl"
TOKEN = "local-cluster-token"


class Cluster:
    def __init__(self, root: Path, history: int = 20000, bookmark_seconds: float = 60.0) -> None:
        self.root = root
        self.store = Store(history=history)
        tls.write_server_certificate(root, lambda path: None)
        self.logs: dict[tuple[str, str, str], Path] = {}
        self.server = ApiServer(self.store, TOKEN, tls=(root / "server.crt", root / "server.key"),
                                logs=lambda ns, pod, c: self.logs.get((ns, pod, c)),
                                bookmark_seconds=bookmark_seconds).start()
        self.kubeconfig = root / "kubeconfig"
        self.kubeconfig.write_text(yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config", "current-context": "taly-local",
            "clusters": [{"name": "local", "cluster": {"server": self.server.url,
                                                       "certificate-authority": str(root / "server.crt")}}],
            "users": [{"name": "local", "user": {"token": TOKEN}}],
            "contexts": [{"name": "taly-local", "context": {"cluster": "local", "user": "local",
                                                            "namespace": "default"}}],
        }))
        self.api_client = config.new_client_from_config(config_file=str(self.kubeconfig))
        self.core = client.CoreV1Api(self.api_client)
        self.apps = client.AppsV1Api(self.api_client)

    def kubectl(self, *args: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
        env = {"KUBECONFIG": str(self.kubeconfig), "HOME": str(self.root), "PATH": "/usr/bin:/bin"}
        result = subprocess.run([str(KUBECTL), *args], input=stdin, capture_output=True, text=True, env=env,
                                timeout=60)
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} -> {result.returncode}\n{result.stderr}")
        return result

    def stop(self) -> None:
        self.api_client.close()
        self.server.stop()


@pytest.fixture
def cluster(tmp_path: Path):
    c = Cluster(tmp_path)
    yield c
    c.stop()


def deployment(name: str = "web", image: str = "registry.local/taly/web:1", replicas: int = 2) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "labels": {"app": name, "tier": "front"}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [
                {"name": "app", "image": image, "ports": [{"containerPort": 8080, "name": "http"}],
                 "env": [{"name": "A", "value": "1"}]}]}},
        },
    }


def pod(name: str, labels: dict[str, str] | None = None, owner: Any = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "labels": labels or {"app": "web"}}
    if owner is not None:
        meta["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": owner.kind, "name": owner.metadata.name,
                                    "uid": owner.metadata.uid, "controller": True}]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta,
            "spec": {"containers": [{"name": "app", "image": "registry.local/taly/web:1"}]}}


def status_of(exc: ApiException) -> dict[str, Any]:
    return json.loads(exc.body)


# ---- the official Python client ----

def test_python_client_create_get_list_with_selectors(cluster: Cluster) -> None:
    created = cluster.apps.create_namespaced_deployment("default", deployment("web"))
    cluster.apps.create_namespaced_deployment("default", deployment("api"))
    assert created.metadata.generation == 1 and created.metadata.uid and created.spec.strategy.type == "RollingUpdate"
    got = cluster.apps.read_namespaced_deployment("web", "default")
    assert got.metadata.resource_version == created.metadata.resource_version
    listed = cluster.apps.list_namespaced_deployment("default", label_selector="app in (web),tier=front")
    assert [d.metadata.name for d in listed.items] == ["web"] and int(listed.metadata.resource_version) > 0
    every = cluster.apps.list_deployment_for_all_namespaces(field_selector="metadata.name!=web")
    assert [d.metadata.name for d in every.items] == ["api"]
    with pytest.raises(ApiException) as missing:
        cluster.apps.read_namespaced_deployment("nope", "default")
    assert missing.value.status == 404
    assert status_of(missing.value) == {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": 'deployments.apps "nope" not found', "reason": "NotFound",
        "details": {"name": "nope", "group": "apps", "kind": "deployments"}, "code": 404}
    with pytest.raises(ApiException) as exists:
        cluster.apps.create_namespaced_deployment("default", deployment("web"))
    assert exists.value.status == 409 and status_of(exists.value)["reason"] == "AlreadyExists"


def test_python_client_paging_through_a_list(cluster: Cluster) -> None:
    for i in range(7):
        cluster.core.create_namespaced_config_map("default", {"metadata": {"name": f"c{i}"}})
    names, token = [], None
    while True:
        page = cluster.core.list_namespaced_config_map("default", limit=3, _continue=token)
        names += [c.metadata.name for c in page.items]
        token = page.metadata._continue
        if not token:
            break
    assert names == [f"c{i}" for i in range(7)]


def test_python_client_replace_and_conflicts(cluster: Cluster) -> None:
    created = cluster.apps.create_namespaced_deployment("default", deployment())
    created.spec.replicas = 3
    replaced = cluster.apps.replace_namespaced_deployment("web", "default", created)
    assert replaced.spec.replicas == 3 and replaced.metadata.generation == 2
    created.spec.replicas = 4  # still carries the first resourceVersion
    with pytest.raises(ApiException) as stale:
        cluster.apps.replace_namespaced_deployment("web", "default", created)
    body = status_of(stale.value)
    assert stale.value.status == 409 and body["reason"] == "Conflict"
    assert body["message"] == ('Operation cannot be fulfilled on deployments.apps "web": the object has been '
                               "modified; please apply your changes to the latest version and try again")


def test_python_client_invalid_object_is_422(cluster: Cluster) -> None:
    bad = deployment()
    bad["spec"]["template"]["metadata"]["labels"] = {"app": "other"}
    with pytest.raises(ApiException) as invalid:
        cluster.apps.create_namespaced_deployment("default", bad)
    body = status_of(invalid.value)
    assert invalid.value.status == 422 and body["reason"] == "Invalid"
    assert body["message"].startswith('Deployment.apps "web" is invalid: spec.template.metadata.labels: Invalid value')
    assert body["details"]["causes"][0]["field"] == "spec.template.metadata.labels"
    with pytest.raises(ApiException) as no_namespace:
        cluster.core.create_namespaced_config_map("missing", {"metadata": {"name": "c"}})
    assert no_namespace.value.status == 404 and status_of(no_namespace.value)["message"] == 'namespaces "missing" not found'


def test_python_client_patches_in_three_formats(cluster: Cluster) -> None:
    cluster.apps.create_namespaced_deployment("default", deployment())
    # a dict body: the client sends application/strategic-merge-patch+json; env merges by name
    strategic = cluster.apps.patch_namespaced_deployment("web", "default", {"spec": {"template": {"spec": {
        "containers": [{"name": "app", "image": "registry.local/taly/web:2", "env": [{"name": "B", "value": "2"}]}]}}}})
    container = strategic.spec.template.spec.containers[0]
    assert container.image.endswith("web:2") and [e.name for e in container.env] == ["A", "B"]
    assert container.ports[0].container_port == 8080 and strategic.metadata.generation == 2
    # a list body: JSON Patch, as kubectl rollout undo sends it (the whole template replaced)
    template = deployment()["spec"]["template"]
    undone = cluster.apps.patch_namespaced_deployment("web", "default", [
        {"op": "replace", "path": "/spec/template", "value": template}])
    assert undone.spec.template.spec.containers[0].image.endswith("web:1")
    assert [e.name for e in undone.spec.template.spec.containers[0].env] == ["A"]
    merged = cluster.apps.patch_namespaced_deployment("web", "default", {"metadata": {"labels": {"tier": None}}},
                                                      _content_type="application/merge-patch+json")
    assert merged.metadata.labels == {"app": "web"}
    with pytest.raises(ApiException) as failing:
        cluster.apps.patch_namespaced_deployment("web", "default", [{"op": "remove", "path": "/spec/nothing"}])
    assert failing.value.status == 422


def test_python_client_status_and_scale_subresources(cluster: Cluster) -> None:
    created = cluster.apps.create_namespaced_deployment("default", deployment())
    created.status = client.V1DeploymentStatus(replicas=2, ready_replicas=1, observed_generation=1)
    created.spec.replicas = 9  # ignored by a status write
    status = cluster.apps.replace_namespaced_deployment_status("web", "default", created)
    assert status.status.ready_replicas == 1 and status.spec.replicas == 2 and status.metadata.generation == 1
    scale = cluster.apps.read_namespaced_deployment_scale("web", "default")
    assert (scale.spec.replicas, scale.status.replicas, scale.status.selector) == (2, 2, "app=web")
    cluster.apps.patch_namespaced_deployment_scale("web", "default", {"spec": {"replicas": 5}})
    scaled = cluster.apps.read_namespaced_deployment("web", "default")
    assert scaled.spec.replicas == 5 and scaled.metadata.generation == 2 and scaled.status.ready_replicas == 1


def test_python_client_deletion_graceful_pods_cascade_and_orphans(cluster: Cluster) -> None:
    rs = cluster.apps.create_namespaced_replica_set("default", {**deployment("web"), "kind": "ReplicaSet"})
    for name in ("web-a", "web-b"):
        cluster.core.create_namespaced_pod("default", pod(name, owner=rs))
    cluster.apps.delete_namespaced_replica_set("web", "default")
    pods = cluster.core.list_namespaced_pod("default").items
    assert [p.metadata.deletion_timestamp is not None for p in pods] == [True, True]
    assert {p.metadata.deletion_grace_period_seconds for p in pods} == {30}
    cluster.core.delete_namespaced_pod("web-a", "default", grace_period_seconds=0)
    assert [p.metadata.name for p in cluster.core.list_namespaced_pod("default").items] == ["web-b"]

    kept = cluster.apps.create_namespaced_replica_set("default", {**deployment("api"), "kind": "ReplicaSet"})
    cluster.core.create_namespaced_pod("default", pod("api-a", {"app": "api"}, owner=kept))
    cluster.apps.delete_namespaced_replica_set("api", "default", propagation_policy="Orphan")
    orphan = cluster.core.read_namespaced_pod("api-a", "default")
    assert orphan.metadata.owner_references is None and orphan.metadata.deletion_timestamp is None


def test_python_client_delete_collection_and_dry_run(cluster: Cluster) -> None:
    for name, tier in (("a", "x"), ("b", "x"), ("c", "y")):
        cluster.core.create_namespaced_config_map("default", {"metadata": {"name": name, "labels": {"tier": tier}}})
    cluster.core.delete_collection_namespaced_config_map("default", label_selector="tier=x")
    assert [c.metadata.name for c in cluster.core.list_namespaced_config_map("default").items] == ["c"]
    dry = cluster.core.create_namespaced_config_map("default", {"metadata": {"name": "d"}}, dry_run="All")
    assert dry.metadata.name == "d"
    with pytest.raises(ApiException) as gone:
        cluster.core.read_namespaced_config_map("d", "default")
    assert gone.value.status == 404


def test_python_client_watch_resumes_from_a_resource_version(cluster: Cluster) -> None:
    first = cluster.core.create_namespaced_config_map("default", {"metadata": {"name": "before"}})
    cluster.core.create_namespaced_config_map("default", {"metadata": {"name": "after"}})
    cluster.core.patch_namespaced_config_map("after", "default", {"data": {"k": "v"}})
    cluster.core.delete_namespaced_config_map("after", "default")
    seen = []
    w = watch.Watch()
    for event in w.stream(cluster.core.list_namespaced_config_map, "default",
                          resource_version=first.metadata.resource_version, timeout_seconds=5):
        seen.append((event["type"], event["object"].metadata.name))
        if len(seen) == 3:
            w.stop()
    assert seen == [("ADDED", "after"), ("MODIFIED", "after"), ("DELETED", "after")]


def test_python_client_watch_sees_live_events_and_bookmarks(tmp_path: Path) -> None:
    cluster = Cluster(tmp_path, bookmark_seconds=0.2)
    try:
        seen: list[tuple[str, str]] = []
        w = watch.Watch()
        ready = threading.Event()

        def produce() -> None:
            ready.wait(5)
            cluster.core.create_namespaced_pod("default", pod("p1"))

        thread = threading.Thread(target=produce)
        thread.start()
        for event in w.stream(cluster.core.list_namespaced_pod, "default", allow_watch_bookmarks=True,
                              timeout_seconds=10):
            name = event["raw_object"].get("metadata", {}).get("name", "")
            seen.append((event["type"], name))
            ready.set()
            if event["type"] == "ADDED":
                w.stop()
        thread.join(5)
        assert seen[0][0] == "BOOKMARK" and seen[-1] == ("ADDED", "p1")
        assert w.resource_version == cluster.core.read_namespaced_pod("p1", "default").metadata.resource_version
    finally:
        cluster.stop()


def test_python_client_watch_ends_after_its_timeout(cluster: Cluster) -> None:
    current = cluster.core.list_namespaced_config_map("default").metadata.resource_version
    events = list(watch.Watch().stream(cluster.core.list_namespaced_config_map, "default",
                                       resource_version=current, timeout_seconds=1))
    assert events == []


def test_python_client_watch_too_old_is_410_after_one_retry(tmp_path: Path) -> None:
    cluster = Cluster(tmp_path, history=5)
    try:
        first = cluster.core.create_namespaced_config_map("default", {"metadata": {"name": "c0"}})
        for i in range(1, 10):
            cluster.core.create_namespaced_config_map("default", {"metadata": {"name": f"c{i}"}})
        w = watch.Watch()
        with pytest.raises(ApiException) as expired:
            for _ in w.stream(cluster.core.list_namespaced_config_map, "default",
                              resource_version=first.metadata.resource_version):
                pass
        assert expired.value.status == 410 and "too old resource version" in expired.value.reason
    finally:
        cluster.stop()


def test_python_client_reads_pod_logs(cluster: Cluster) -> None:
    cluster.core.create_namespaced_pod("default", pod("p1"))
    log = cluster.root / "p1.log"
    log.write_text("one\ntwo\nthree\n")
    cluster.logs[("default", "p1", "app")] = log
    # raw bytes: kubernetes-client 36 returns the repr of the bytes as the str (kubernetes-client/python#2596)
    whole = cluster.core.read_namespaced_pod_log("p1", "default", _preload_content=False)
    assert whole.data == b"one\ntwo\nthree\n"
    assert cluster.core.read_namespaced_pod_log("p1", "default", tail_lines=1, _preload_content=False).data \
        == b"three\n"
    assert cluster.kubectl("logs", "p1", "--tail=2").stdout == "two\nthree\n"


def test_kubectl_follows_a_log_until_the_pod_is_gone(cluster: Cluster) -> None:
    cluster.core.create_namespaced_pod("default", pod("p1"))
    log = cluster.root / "p1.log"
    log.write_text("started\n")
    cluster.logs[("default", "p1", "app")] = log
    env = {"KUBECONFIG": str(cluster.kubeconfig), "HOME": str(cluster.root), "PATH": "/usr/bin:/bin"}
    follow = subprocess.Popen([str(KUBECTL), "logs", "-f", "p1"], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert follow.stdout.readline() == "started\n"
        with log.open("a") as f:
            f.write("serving\n")
        assert follow.stdout.readline() == "serving\n"
        cluster.core.delete_namespaced_pod("p1", "default", grace_period_seconds=0)
        assert follow.wait(30) == 0
    finally:
        follow.kill()


def test_wrong_token_is_401(cluster: Cluster) -> None:
    configuration = client.Configuration()
    configuration.host = cluster.server.url
    configuration.ssl_ca_cert = str(cluster.root / "server.crt")
    configuration.api_key = {"authorization": "Bearer wrong"}
    with client.ApiClient(configuration) as wrong:
        with pytest.raises(ApiException) as denied:
            client.CoreV1Api(wrong).list_namespaced_pod("default")
    assert denied.value.status == 401 and status_of(denied.value)["reason"] == "Unauthorized"


# ---- kubectl ----

MANIFEST = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, labels: {app: web}}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: app
        image: registry.local/taly/web:1
        ports: [{containerPort: 8080, name: http}]
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: http}]
---
apiVersion: v1
kind: ConfigMap
metadata: {name: web}
data: {LOG_LEVEL: info}
"""


def test_kubectl_version_and_api_resources(cluster: Cluster) -> None:
    assert "Server Version: v1.35" in cluster.kubectl("version").stdout
    lines = cluster.kubectl("api-resources", "--no-headers").stdout.splitlines()
    rows = {line.split()[0]: line.split() for line in lines}
    assert rows["deployments"][1:] == ["deploy", "apps/v1", "true", "Deployment"]
    assert rows["namespaces"][1:] == ["ns", "v1", "false", "Namespace"]
    assert {"leases", "horizontalpodautoscalers", "poddisruptionbudgets", "networkpolicies", "events"} <= set(rows)


def test_kubectl_apply_twice_is_a_no_op_the_second_time(cluster: Cluster) -> None:
    first = cluster.kubectl("apply", "-f", "-", stdin=MANIFEST).stdout
    assert first.split("\n")[:3] == ["deployment.apps/web created", "service/web created", "configmap/web created"]
    rv = cluster.apps.read_namespaced_deployment("web", "default").metadata.resource_version
    second = cluster.kubectl("apply", "-f", "-", stdin=MANIFEST).stdout
    assert second.split("\n")[:3] == ["deployment.apps/web unchanged", "service/web unchanged",
                                      "configmap/web unchanged"]
    assert cluster.apps.read_namespaced_deployment("web", "default").metadata.resource_version == rv
    changed = cluster.kubectl("apply", "-f", "-", stdin=MANIFEST.replace("web:1", "web:2")).stdout
    assert "deployment.apps/web configured" in changed
    live = cluster.apps.read_namespaced_deployment("web", "default")
    assert live.spec.template.spec.containers[0].image.endswith("web:2") and live.metadata.generation == 2
    assert "kubectl.kubernetes.io/last-applied-configuration" in live.metadata.annotations


def test_kubectl_apply_refuses_unknown_fields(cluster: Cluster) -> None:
    bad = cluster.kubectl("apply", "-f", "-", stdin="apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n"
                          "data: {a: b}\nbogus: 1\n", check=False)
    assert bad.returncode != 0
    assert 'strict decoding error: unknown field "bogus"' in bad.stderr
    with pytest.raises(ApiException):
        cluster.core.read_namespaced_config_map("c", "default")


def test_kubectl_get_tables(cluster: Cluster) -> None:
    cluster.kubectl("apply", "-f", "-", stdin=MANIFEST)
    cluster.apps.patch_namespaced_deployment_status("web", "default", {"status": {
        "replicas": 2, "readyReplicas": 1, "updatedReplicas": 2, "availableReplicas": 1}})
    cluster.core.create_namespaced_pod("default", pod("web-a"))
    cluster.core.patch_namespaced_pod_status("web-a", "default", {"status": {
        "phase": "Running", "podIP": "127.0.1.2", "containerStatuses": [{
            "name": "app", "ready": False, "restartCount": 3, "image": "web:1", "imageID": "", "started": False,
            "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]}})
    out = cluster.kubectl("get", "deploy,pods").stdout
    lines = [line.split() for line in out.splitlines() if line.strip()]
    assert lines[0] == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    assert lines[1][:4] == ["deployment.apps/web", "1/2", "2", "1"]
    assert lines[2] == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert lines[3][:4] == ["pod/web-a", "0/1", "CrashLoopBackOff", "3"]
    wide = cluster.kubectl("get", "pods", "-o", "wide").stdout.splitlines()
    assert wide[0].split()[:6] == ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP"]
    assert "127.0.1.2" in wide[1]
    services = cluster.kubectl("get", "svc").stdout.splitlines()
    assert services[0].split() == ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"]
    assert services[1].split()[:2] == ["web", "ClusterIP"] and "80/TCP" in services[1]


def test_kubectl_get_json_selectors_and_field_selectors(cluster: Cluster) -> None:
    cluster.kubectl("apply", "-f", "-", stdin=MANIFEST)
    for name, app in (("a", "web"), ("b", "api")):
        cluster.core.create_namespaced_pod("default", pod(name, {"app": app}))
    cluster.core.patch_namespaced_pod_status("a", "default", {"status": {"phase": "Running"}})
    listed = json.loads(cluster.kubectl("get", "pods", "-o", "json").stdout)
    assert listed["kind"] == "List" and [p["metadata"]["name"] for p in listed["items"]] == ["a", "b"]
    assert listed["items"][0]["kind"] == "Pod"
    one = json.loads(cluster.kubectl("get", "deploy", "web", "-o", "json").stdout)
    assert one["spec"]["replicas"] == 2 and one["metadata"]["generation"] == 1
    assert cluster.kubectl("get", "pods", "-l", "app=api", "-o", "name").stdout.split() == ["pod/b"]
    assert cluster.kubectl("get", "pods", "--field-selector", "status.phase=Running", "-o", "name").stdout.split() \
        == ["pod/a"]
    bad = cluster.kubectl("get", "pods", "--field-selector", "spec.bogus=x", check=False)
    assert bad.returncode != 0 and "field label not supported: spec.bogus" in bad.stderr


def test_kubectl_create_label_annotate_patch_scale_delete(cluster: Cluster) -> None:
    cluster.kubectl("create", "-f", "-", stdin=MANIFEST)
    again = cluster.kubectl("create", "-f", "-", stdin=MANIFEST, check=False)
    assert again.returncode != 0 and 'deployments.apps "web" already exists' in again.stderr
    cluster.kubectl("label", "deploy", "web", "tier=front")
    cluster.kubectl("annotate", "deploy", "web", "owner=platform")
    cluster.kubectl("patch", "deploy", "web", "--type", "merge", "-p", '{"spec":{"replicas":3}}')
    cluster.kubectl("patch", "deploy", "web", "--type", "json", "-p",
                    '[{"op":"replace","path":"/spec/template/spec/containers/0/image","value":"web:3"}]')
    cluster.kubectl("patch", "deploy", "web", "--type", "strategic", "-p",
                    '{"spec":{"template":{"spec":{"containers":[{"name":"app","env":[{"name":"X","value":"1"}]}]}}}}')
    cluster.kubectl("scale", "deploy", "web", "--replicas=4")
    live = cluster.apps.read_namespaced_deployment("web", "default")
    assert live.metadata.labels == {"app": "web", "tier": "front"}
    assert live.metadata.annotations["owner"] == "platform"
    assert live.spec.replicas == 4
    container = live.spec.template.spec.containers[0]
    assert (container.image, [e.name for e in container.env], container.ports[0].name) == ("web:3", ["X"], "http")
    assert cluster.kubectl("delete", "deploy", "web").stdout.startswith('deployment.apps "web" deleted')
    assert cluster.kubectl("get", "deploy", "-o", "name").stdout == ""


def test_kubectl_errors_are_the_api_servers(cluster: Cluster) -> None:
    missing = cluster.kubectl("get", "deploy", "nope", check=False)
    assert missing.returncode == 1
    assert missing.stderr.strip() == 'Error from server (NotFound): deployments.apps "nope" not found'
    malformed = cluster.kubectl("create", "--raw", "/api/v1/namespaces/default/configmaps", "-f", "-",
                                stdin="{not json", check=False)
    assert malformed.returncode != 0 and "BadRequest" in malformed.stderr
    unknown = cluster.kubectl("get", "--raw", "/apis/apps/v1/namespaces/default/widgets", check=False)
    assert unknown.returncode != 0 and "NotFound" in unknown.stderr
    not_allowed = cluster.kubectl("delete", "--raw", "/apis/apps/v1", check=False)
    assert not_allowed.returncode != 0 and "MethodNotAllowed" in not_allowed.stderr
    server_side = cluster.kubectl("apply", "--server-side", "-f", "-", stdin=MANIFEST, check=False)
    assert server_side.returncode != 0 and "application/strategic-merge-patch+json" in server_side.stderr
    system = cluster.kubectl("delete", "namespace", "default", check=False)
    assert system.stderr.strip() == ('Error from server (Forbidden): namespaces "default" is forbidden: '
                                     "this namespace may not be deleted")
    assert "Server Version" in cluster.kubectl("version").stdout  # still serving
