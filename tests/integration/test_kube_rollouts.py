"""Rollouts as clients no one here wrote see them: kubectl 1.35 (`rollout status`, `history`, `undo`,
`scale`) and the official Python client (patch an image, watch to completion), against the local
cluster's API server and controllers (pods by the stub kubelet: no processes)."""

from __future__ import annotations

import re
import time

import pytest
import yaml

pytestmark = pytest.mark.integration

DEPLOYMENT = {
    "apiVersion": "apps/v1", "kind": "Deployment",
    "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
    "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
             "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
             "template": {"metadata": {"labels": {"app": "web"}},
                          "spec": {"containers": [{"name": "web", "image": "web:1",
                                                   "ports": [{"containerPort": 8080}]}]}}},
}


def apply(cluster, tmp_path, **spec) -> None:
    body = {**DEPLOYMENT, "spec": {**DEPLOYMENT["spec"], **spec}}
    path = tmp_path / "web.yaml"
    path.write_text(yaml.safe_dump(body))
    done = cluster.kubectl("apply", "-f", str(path))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "deployment.apps/web created"


def ok(done) -> str:
    assert done.returncode == 0, f"rc {done.returncode}: {done.stderr}"
    return done.stdout


def wait_for(what: str, fn, timeout: float = 20.0):
    end = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() > end:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


def replica_sets(cluster) -> dict[str, dict]:
    """The Deployment's ReplicaSets by image."""
    items = cluster.store.list("replicasets", "default", label_selector="app=web")[0]
    return {rs["spec"]["template"]["spec"]["containers"][0]["image"]: rs for rs in items}


def test_kubectl_rollout_status_history_undo_and_scale(rollout_cluster, tmp_path):
    cluster = rollout_cluster()
    apply(cluster, tmp_path)
    status = ok(cluster.kubectl("rollout", "status", "deployment/web", "--timeout=60s"))
    assert status.strip().splitlines()[-1] == 'deployment "web" successfully rolled out'

    assert ok(cluster.kubectl("set", "image", "deployment/web", "web=web:2")).strip() == "deployment.apps/web image updated"
    # after the change, as `--record` did: the annotation goes to the new ReplicaSet only
    ok(cluster.kubectl("annotate", "deployment/web", "kubernetes.io/change-cause=image web:2"))
    assert 'deployment "web" successfully rolled out' in ok(cluster.kubectl("rollout", "status", "deployment/web",
                                                                             "--timeout=60s"))
    first = replica_sets(cluster)["web:1"]
    assert first["spec"]["replicas"] == 0 and replica_sets(cluster)["web:2"]["spec"]["replicas"] == 2

    history = ok(cluster.kubectl("rollout", "history", "deployment/web"))
    rows = [line.split(None, 1) for line in history.strip().splitlines()[2:]]
    assert rows == [["1", "<none>"], ["2", "image web:2"]], history
    revision_one = ok(cluster.kubectl("rollout", "history", "deployment/web", "--revision=1"))
    assert re.search(r"Image:\s+web:1", revision_one), revision_one

    assert ok(cluster.kubectl("rollout", "undo", "deployment/web")).strip() == "deployment.apps/web rolled back"
    assert 'successfully rolled out' in ok(cluster.kubectl("rollout", "status", "deployment/web", "--timeout=60s"))
    back = replica_sets(cluster)["web:1"]
    assert back["metadata"]["name"] == first["metadata"]["name"]  # the previous ReplicaSet, scaled back up
    assert back["spec"]["replicas"] == 2 and back["status"]["availableReplicas"] == 2
    assert back["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3"
    assert replica_sets(cluster)["web:2"]["spec"]["replicas"] == 0
    history = ok(cluster.kubectl("rollout", "history", "deployment/web"))
    assert [line.split(None, 1)[0] for line in history.strip().splitlines()[2:]] == ["2", "3"], history

    assert ok(cluster.kubectl("scale", "deployment/web", "--replicas=3")).strip() == "deployment.apps/web scaled"
    ok(cluster.kubectl("rollout", "status", "deployment/web", "--timeout=60s"))
    wide = ok(cluster.kubectl("get", "deploy,rs", "-o", "wide"))
    assert re.search(r"deployment\.apps/web\s+3/3\s+3\s+3", wide), wide
    assert re.search(rf"replicaset\.apps/{first['metadata']['name']}\s+3\s+3\s+3", wide), wide
    pods = ok(cluster.kubectl("get", "pods", "-l", "app=web", "-o", "name")).split()
    assert len(pods) == 3 and all(p.startswith(f"pod/{first['metadata']['name']}-") for p in pods)
    events = ok(cluster.kubectl("get", "events", "--field-selector", "involvedObject.kind=Deployment"))
    assert f"Scaled up replica set {first['metadata']['name']} from 2 to 3" in events, events


def test_kubectl_rollout_status_reports_a_stuck_rollout_past_its_deadline(rollout_cluster, tmp_path):
    cluster = rollout_cluster(never_ready=("web:bad",))
    apply(cluster, tmp_path, progressDeadlineSeconds=30)
    ok(cluster.kubectl("rollout", "status", "deployment/web", "--timeout=60s"))
    ok(cluster.kubectl("set", "image", "deployment/web", "web=web:bad"))
    wait_for("the stuck pod", lambda: "web:bad" in replica_sets(cluster)
             and replica_sets(cluster)["web:bad"].get("status", {}).get("replicas") == 1)
    watching = cluster.kubectl_background("rollout", "status", "deployment/web", "--timeout=60s")
    try:
        first = watching.stdout.readline()  # kubectl is watching: only now does the deadline pass
        cluster.clock.advance(31)
        out, err = watching.communicate(timeout=60)
    finally:
        if watching.poll() is None:
            watching.kill()
    assert first == 'Waiting for deployment "web" rollout to finish: 1 out of 2 new replicas have been updated...\n'
    assert watching.returncode == 1, (out, err)
    assert err.strip().splitlines()[-1] == 'error: deployment "web" exceeded its progress deadline'
    old = replica_sets(cluster)["web:1"]
    assert old["spec"]["replicas"] == 2 and old["status"]["availableReplicas"] == 2  # the old pods kept


def test_the_official_client_patches_an_image_and_watches_the_rollout_to_completion(rollout_cluster, tmp_path):
    from kubernetes import client, watch

    cluster = rollout_cluster()
    apply(cluster, tmp_path)
    ok(cluster.kubectl("rollout", "status", "deployment/web", "--timeout=60s"))
    apps = client.AppsV1Api(cluster.client())
    patched = apps.patch_namespaced_deployment(
        "web", "default", {"spec": {"template": {"spec": {"containers": [{"name": "web", "image": "web:2"}]}}}})
    assert patched.metadata.generation == 2
    assert patched.spec.template.spec.containers[0].ports[0].container_port == 8080  # merged by name, not replaced

    done = None
    stream = watch.Watch()
    for event in stream.stream(apps.list_namespaced_deployment, "default", field_selector="metadata.name=web",
                               resource_version=patched.metadata.resource_version, timeout_seconds=60):
        d = event["object"]
        s = d.status
        if (s.observed_generation or 0) >= d.metadata.generation and s.updated_replicas == 2 \
                and s.replicas == 2 and s.available_replicas == 2:
            done = d
            stream.stop()
    assert done is not None, "the watch ended before the rollout completed"
    progressing = {c.type: c for c in done.status.conditions}["Progressing"]
    assert (progressing.status, progressing.reason) == ("True", "NewReplicaSetAvailable")
    assert done.metadata.annotations["deployment.kubernetes.io/revision"] == "2"
    rss = apps.list_namespaced_replica_set("default", label_selector="app=web").items
    by_revision = {rs.metadata.annotations["deployment.kubernetes.io/revision"]: rs for rs in rss}
    assert by_revision["2"].spec.replicas == 2 and by_revision["1"].spec.replicas == 0
    assert by_revision["2"].metadata.owner_references[0].uid == done.metadata.uid
