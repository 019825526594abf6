"""The local cluster as `taly local up` starts it, through clients no one here wrote: kubectl with the
kubeconfig the estate writes, and Prometheus (its targets and series, over its HTTP API).

The session's shared estate (conftest.py `local_estate`) for what leaves it as it was; an estate of this
module's own for killing the cluster (`local up` restarts it and deploys the chart again) and for
`local down` (nothing of the cluster's process group may be left).
"""

from __future__ import annotations

import json
import os
import signal
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from taly_ops.local import kube, supervisor, workloads
from taly_ops.local.cluster.images import ImageRegistry
from taly_ops.local.state import State, load
from taly_platform.catalog import SERVICE_NAMES

pytestmark = pytest.mark.integration

PODS = 2 * len(SERVICE_NAMES)


def items(kubectl, state: State, what: str) -> list[dict[str, Any]]:
    return json.loads(kubectl(state, "get", what, "-n", "taly", "-o", "json").stdout)["items"]


def prometheus_get(estate: State, path: str, **params: str) -> Any:
    url = f"{estate.endpoints['prometheus']['url']}{path}?{urllib.parse.urlencode(params)}"
    with urllib.request.urlopen(url, timeout=5) as resp:
        return json.load(resp)["data"]


def running_ready(pod: dict[str, Any]) -> bool:
    ready = [c for c in pod["status"].get("conditions") or [] if c["type"] == "Ready"]
    return pod["status"].get("phase") == "Running" and bool(ready) and ready[0]["status"] == "True"


# --- the shared estate ---------------------------------------------------------------------------------------

def test_local_up_starts_the_cluster_and_status_lists_it(local_estate, taly):
    result = taly("local", "status", "--state-dir", local_estate.state_dir, "-o", "json")
    assert result.exit_code == 0, result.stderr
    component = next(c for c in taly.json(result)["components"] if c["name"] == "kube")
    assert component["status"] == "running"
    assert component["kubeconfig"] == str(local_estate.state_dir / "kubeconfig")
    assert component["context"] == "taly-local" and component["url"] == f"https://127.0.0.1:{component['port']}"
    table = taly("local", "status", "--state-dir", local_estate.state_dir, env={"COLUMNS": "250"})
    assert f"export KUBECONFIG={local_estate.state_dir / 'kubeconfig'}" in table.stdout
    token = kube.token_path(local_estate.state_dir)
    assert oct(token.stat().st_mode & 0o777) == "0o600"


def test_kubectl_lists_ten_available_deployments_and_twenty_ready_pods(local_estate, kubectl):
    deployments = items(kubectl, local_estate, "deployments")
    assert sorted(d["metadata"]["name"] for d in deployments) == sorted(SERVICE_NAMES)
    for d in deployments:
        s = d["status"]
        assert (d["spec"]["replicas"], s.get("availableReplicas"), s.get("updatedReplicas")) == (2, 2, 2), d["status"]
        available = next(c for c in s["conditions"] if c["type"] == "Available")
        assert available["status"] == "True"
    pods = items(kubectl, local_estate, "pods")
    assert len(pods) == PODS and all(running_ready(p) for p in pods), [
        (p["metadata"]["name"], p["status"].get("phase")) for p in pods if not running_ready(p)]
    assert len({p["status"]["podIP"] for p in pods}) == PODS  # a loopback address each
    table = kubectl(local_estate, "get", "deploy", "-n", "taly").stdout
    assert all(f"{name} " in table for name in SERVICE_NAMES) and "2/2" in table


def test_kubectl_apply_of_the_rendered_chart_is_accepted(local_estate, kubectl, tmp_path):
    registry = ImageRegistry(kube.images_path(local_estate.state_dir))
    images = {name: registry.push(name, workloads.INITIAL_TAG) for name in SERVICE_NAMES}  # the images running
    objects = workloads.render(local_estate.endpoints, images)
    manifest = tmp_path / "chart.yaml"
    manifest.write_text(yaml.safe_dump_all(objects, sort_keys=False))
    pods_before = sorted(p["metadata"]["name"] for p in items(kubectl, local_estate, "pods"))
    replicasets = sorted(r["metadata"]["name"] for r in items(kubectl, local_estate, "replicasets"))
    done = kubectl(local_estate, "apply", "-f", str(manifest))
    assert done.stdout.count("\n") == len(objects), done.stdout
    assert "deployment.apps/auth configured" in done.stdout  # it gains kubectl's last-applied annotation
    assert "horizontalpodautoscaler.autoscaling/auth " in done.stdout
    # The same chart: no new template, so no rollout; the HPA-owned replica count is kept.
    assert sorted(r["metadata"]["name"] for r in items(kubectl, local_estate, "replicasets")) == replicasets
    assert sorted(p["metadata"]["name"] for p in items(kubectl, local_estate, "pods")) == pods_before
    generations = {d["metadata"]["name"]: d["metadata"]["generation"] for d in items(kubectl, local_estate, "deployments")}
    assert {d["spec"]["replicas"] for d in items(kubectl, local_estate, "deployments")} == {2}
    again = kubectl(local_estate, "apply", "-f", str(manifest))
    # kubectl always re-sends a PodDisruptionBudget's selector (its patch strategy is "replace"): "configured".
    changed = [line for line in again.stdout.splitlines() if not line.endswith(" unchanged")]
    assert changed and all(line.startswith("poddisruptionbudget.policy/") for line in changed), again.stdout
    assert {d["metadata"]["name"]: d["metadata"]["generation"] for d in items(kubectl, local_estate, "deployments")} \
        == generations


def test_prometheus_scrapes_every_pod(local_estate, kubectl):
    pods = {p["metadata"]["name"]: p for p in items(kubectl, local_estate, "pods")}
    targets = [t for t in prometheus_get(local_estate, "/api/v1/targets", state="active")["activeTargets"]
               if t["labels"].get("job") == "kubernetes-pods"]
    assert sorted(t["labels"]["pod"] for t in targets) == sorted(pods)
    for t in targets:
        pod = pods[t["labels"]["pod"]]
        assert t["labels"]["instance"] == f"{pod['status']['podIP']}:3000"
        assert t["labels"]["app_kubernetes_io_name"] == pod["metadata"]["labels"]["app.kubernetes.io/name"]
    up = prometheus_get(local_estate, "/api/v1/query", query='up{job="kubernetes-pods"}')["result"]
    assert sorted(s["metric"]["pod"] for s in up) == sorted(pods)
    assert {s["value"][1] for s in up} == {"1"}
    restarts = prometheus_get(local_estate, "/api/v1/query", query="kube_pod_container_status_restarts_total")["result"]
    assert sorted(s["metric"]["pod"] for s in restarts) == sorted(pods)


def test_health_strict_on_a_fresh_estate_exits_0(local_estate, taly):
    result = taly("health", "--env", "local", "--state-dir", local_estate.state_dir, "--strict", "-o", "json")
    data = json.loads(result.stdout)
    assert result.exit_code == 0, [c for c in data["checks"] if c["status"] != "ok"]
    assert "kubernetes" in data["components"]
    assert {c["name"] for c in data["checks"] if c["component"] == "kubernetes"} >= {
        "api server", "pods backing off", "restarts in the last hour", *(f"deployment {n}" for n in SERVICE_NAMES)}


# --- an estate of this module's own: the cluster killed, then the estate taken down ------------------------------

def test_a_killed_cluster_is_restarted_with_its_pods_and_down_leaves_nothing(estate_factory, taly, kubectl):
    state = estate_factory("taly-cluster-", 1_000)
    old = state.component("kube")
    pods_before = {p["metadata"]["name"] for p in items(kubectl, state, "pods")}
    os.kill(old.pid, signal.SIGKILL)
    supervisor.wait_until(lambda: not supervisor.alive(old.pid, old.start_time), component="kube", what="exit",
                          timeout=10)

    result = taly("local", "up", "--state-dir", state.state_dir, "-o", "json")
    assert result.exit_code == 0, result.stderr
    assert taly.json(result)["restarted"] == ["kube"]
    new = load(state.state_dir).component("kube")
    assert new.pid != old.pid and new.port == old.port
    assert not supervisor.group_members(old.pgid)  # the killed cluster's pods went with it
    pods = items(kubectl, state, "pods")
    assert len(pods) == PODS and all(running_ready(p) for p in pods)
    assert not pods_before & {p["metadata"]["name"] for p in pods}  # new pods: the chart was deployed again

    members = supervisor.group_members(new.pgid)
    assert len(members) > PODS  # the cluster and every pod's process, in one process group
    result = taly("local", "down", "--state-dir", state.state_dir, "-o", "json")
    assert result.exit_code == 0, result.stderr
    left = [pid for pid in members if Path(f"/proc/{pid}").exists() and supervisor.pgid_of(pid) == new.pgid]
    assert not left and not supervisor.group_members(new.pgid)
    assert not supervisor.port_open(new.port)
