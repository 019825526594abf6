"""The Deployment and ReplicaSet controllers over the real store, pods kept by a stub kubelet.

Each test runs the controllers' threads; `wait_for` waits (bounded) for the state a step must reach,
and the clock only moves when a test moves it (progress deadlines, minReadySeconds).
"""

from __future__ import annotations

import copy
import threading
import time

import pytest

from fakes import FakeClock
from stub_kubelet import StubKubelet
from taly_ops.local.cluster.controllers import Controllers
from taly_ops.local.cluster.controllers.templates import compute_hash
from taly_ops.local.cluster.store import Store

NS = "cms"
HASH = "pod-template-hash"
REVISION = "deployment.kubernetes.io/revision"


def wait_for(what: str, fn, timeout: float = 10.0):
    """fn()'s first truthy value; fails naming `what` if none comes within timeout."""
    end = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() > end:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.01)


class Cluster:
    def __init__(self, auto_ready: bool = True, never_ready: tuple[str, ...] = ()) -> None:
        self.clock = FakeClock(1_750_000_000.0)
        self.store = Store(clock=self.clock)
        self.store.create("namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
        self.kubelet = StubKubelet(self.store, self.clock, auto_ready=auto_ready, never_ready=never_ready)
        self.controllers = Controllers(self.store, clock=self.clock, tick=0.01)

    def start(self) -> "Cluster":
        self.kubelet.start()
        self.controllers.start()
        return self

    def stop(self) -> None:
        self.controllers.stop()
        self.kubelet.stop()

    # --- objects ------------------------------------------------------------------------------------

    def create(self, name: str = "web", replicas: int = 2, image: str = "web:1", **spec) -> dict:
        body = {"apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": name, "namespace": NS, "labels": {"app": name}},
                "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                         "strategy": {"type": "RollingUpdate",
                                      "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
                         "template": {"metadata": {"labels": {"app": name}},
                                      "spec": {"containers": [{"name": name, "image": image}]}}}}
        body["spec"].update(spec)
        return self.store.create("deployments", body)

    def edit(self, name: str, fn) -> dict:
        return self.store.mutate("deployments", NS, name, fn)

    def set_image(self, name: str, image: str) -> dict:
        def fn(d):
            d["spec"]["template"]["spec"]["containers"][0]["image"] = image
        return self.edit(name, fn)

    def deployment(self, name: str = "web") -> dict:
        return self.store.get("deployments", NS, name)

    def replica_sets(self, name: str = "web") -> list[dict]:
        return sorted(self.store.list("replicasets", NS, label_selector=f"app={name}")[0],
                      key=lambda rs: int(rs["metadata"]["annotations"].get(REVISION, "0")))

    def rs_with_image(self, image: str, name: str = "web") -> dict | None:
        for rs in self.replica_sets(name):
            if rs["spec"]["template"]["spec"]["containers"][0]["image"] == image:
                return rs
        return None

    def pods(self, name: str = "web", image: str | None = None, live: bool = True) -> list[dict]:
        pods = self.store.list("pods", NS, label_selector=f"app={name}")[0]
        if live:
            pods = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
        if image:
            pods = [p for p in pods if p["spec"]["containers"][0]["image"] == image]
        return pods

    def events(self, reason: str | None = None) -> list[dict]:
        events = self.store.list("events", NS)[0]
        return [e for e in events if reason is None or e["reason"] == reason]

    def messages(self, reason: str) -> list[str]:
        return [e["message"] for e in sorted(self.events(reason), key=lambda e: int(e["metadata"]["resourceVersion"]))]

    def condition(self, ctype: str, name: str = "web") -> dict | None:
        for c in (self.deployment(name).get("status") or {}).get("conditions") or []:
            if c["type"] == ctype:
                return c
        return None

    def rolled_out(self, name: str = "web") -> bool:
        """`kubectl rollout status`'s success test."""
        d = self.deployment(name)
        s = d.get("status") or {}
        want = d["spec"]["replicas"]
        return (d["metadata"]["generation"] <= s.get("observedGeneration", 0) and s.get("updatedReplicas", 0) == want
                and s.get("replicas", 0) == want and s.get("availableReplicas", 0) == want)


@pytest.fixture
def cluster():
    started: list[Cluster] = []

    def make(**kwargs) -> Cluster:
        c = Cluster(**kwargs).start()
        started.append(c)
        return c
    yield make
    for c in started:
        c.stop()


# --- a new Deployment -------------------------------------------------------------------------------

def test_a_new_deployment_becomes_available_with_upstreams_names_labels_and_annotations(cluster):
    c = cluster()
    c.create("web", replicas=2, image="web:1")
    wait_for("the rollout", lambda: c.rolled_out())
    d = c.deployment()
    [rs] = c.replica_sets()
    pod_hash = rs["metadata"]["labels"][HASH]
    assert rs["metadata"]["name"] == f"web-{pod_hash}"
    assert rs["spec"]["selector"]["matchLabels"] == {"app": "web", HASH: pod_hash}
    assert rs["spec"]["template"]["metadata"]["labels"] == {"app": "web", HASH: pod_hash}
    assert rs["metadata"]["ownerReferences"] == [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web",
                                                 "uid": d["metadata"]["uid"], "controller": True,
                                                 "blockOwnerDeletion": True}]
    assert {k: v for k, v in rs["metadata"]["annotations"].items()} == {
        REVISION: "1", "deployment.kubernetes.io/desired-replicas": "2", "deployment.kubernetes.io/max-replicas": "3"}
    assert d["metadata"]["annotations"][REVISION] == "1"
    assert d["metadata"]["generation"] == 1  # written with the status, as upstream: no new generation
    pods = c.pods()
    assert len(pods) == 2
    for p in pods:
        assert p["metadata"]["name"].startswith(f"web-{pod_hash}-") and len(p["metadata"]["name"]) == len(
            f"web-{pod_hash}-") + 5
        assert p["metadata"]["labels"] == {"app": "web", HASH: pod_hash}
        [ref] = p["metadata"]["ownerReferences"]
        assert (ref["kind"], ref["name"], ref["uid"], ref["controller"], ref["blockOwnerDeletion"]) == (
            "ReplicaSet", rs["metadata"]["name"], rs["metadata"]["uid"], True, True)
    status = d["status"]
    assert {k: status.get(k) for k in ("observedGeneration", "replicas", "updatedReplicas", "readyReplicas",
                                       "availableReplicas", "unavailableReplicas")} == {
        "observedGeneration": 1, "replicas": 2, "updatedReplicas": 2, "readyReplicas": 2, "availableReplicas": 2,
        "unavailableReplicas": None}  # zero counts are omitted, as the API serialises them
    rs = c.replica_sets()[0]
    assert rs["status"] == {"replicas": 2, "fullyLabeledReplicas": 2, "readyReplicas": 2, "availableReplicas": 2,
                            "observedGeneration": 1}
    available, progressing = c.condition("Available"), c.condition("Progressing")
    assert (available["status"], available["reason"]) == ("True", "MinimumReplicasAvailable")
    assert (progressing["status"], progressing["reason"], progressing["message"]) == (
        "True", "NewReplicaSetAvailable", f'ReplicaSet "web-{pod_hash}" has successfully progressed.')
    assert c.messages("ScalingReplicaSet") == [f"Scaled up replica set web-{pod_hash} from 0 to 2"]
    assert sorted(c.messages("SuccessfulCreate")) == sorted(f"Created pod: {p['metadata']['name']}" for p in pods)
    created = c.events("ScalingReplicaSet")[0]
    assert created["involvedObject"]["kind"] == "Deployment" and created["source"] == {
        "component": "deployment-controller"}


def test_a_deleted_pod_is_replaced(cluster):
    c = cluster()
    c.create("web", replicas=2)
    wait_for("the rollout", lambda: c.rolled_out())
    victim = c.pods()[0]["metadata"]["name"]
    c.store.delete("pods", NS, victim)
    wait_for("a replacement", lambda: len(c.pods()) == 2 and victim not in {p["metadata"]["name"] for p in c.pods()})
    wait_for("availability again", lambda: c.rolled_out())


# --- rolling update ---------------------------------------------------------------------------------

def test_a_rolling_update_with_surge_1_unavailable_0_never_drops_below_two_available(cluster):
    c = cluster(auto_ready=False)
    c.create("web", replicas=2, image="web:1")
    wait_for("two pods", lambda: len(c.pods()) == 2)
    for p in c.pods():
        c.kubelet.make_ready(NS, p["metadata"]["name"])
    wait_for("the first rollout", lambda: c.rolled_out())
    old = c.replica_sets()[0]

    ready_counts: list[int] = []
    lock = threading.Lock()

    def watch_ready(event, plural, obj):
        if plural == "pods":
            with lock:
                ready_counts.append(sum(
                    1 for p in c.store.list("pods", NS)[0] if not p["metadata"].get("deletionTimestamp")
                    and any(x["type"] == "Ready" and x["status"] == "True" for x in p["status"].get("conditions", []))))
    c.store.add_listener(watch_ready)

    c.set_image("web", "web:2")
    # step 1: one surge pod, both old pods kept
    new = wait_for("the new ReplicaSet at 1", lambda: (rs := c.rs_with_image("web:2")) and rs["spec"]["replicas"] == 1
                   and rs)
    assert new["metadata"]["annotations"][REVISION] == "2"
    [surge] = wait_for("the surge pod", lambda: c.pods(image="web:2"))
    assert len(c.pods(image="web:1")) == 2 and c.rs_with_image("web:1")["spec"]["replicas"] == 2
    progressing = wait_for("ReplicaSetUpdated", lambda: (x := c.condition("Progressing"))
                           and x["reason"] in ("NewReplicaSetCreated", "ReplicaSetUpdated") and x)
    assert progressing["status"] == "True"
    # step 2: the new pod ready -> one old pod goes, the new ReplicaSet grows to 2
    c.kubelet.make_ready(NS, surge["metadata"]["name"])
    wait_for("one old pod gone", lambda: len(c.pods(image="web:1")) == 1)
    second = wait_for("the second new pod", lambda: [p for p in c.pods(image="web:2")
                                                     if p["metadata"]["name"] != surge["metadata"]["name"]])
    assert len(c.pods(image="web:1")) == 1
    # step 3: the second ready -> the last old pod goes
    c.kubelet.make_ready(NS, second[0]["metadata"]["name"])
    wait_for("the rollout", lambda: c.rolled_out())
    assert c.pods(image="web:1") == []
    assert c.rs_with_image("web:1")["spec"]["replicas"] == 0  # kept for rollback
    new_name, old_name = new["metadata"]["name"], old["metadata"]["name"]
    assert c.messages("ScalingReplicaSet")[1:] == [
        f"Scaled up replica set {new_name} from 0 to 1", f"Scaled down replica set {old_name} from 2 to 1",
        f"Scaled up replica set {new_name} from 1 to 2", f"Scaled down replica set {old_name} from 1 to 0"]
    assert c.deployment()["metadata"]["annotations"][REVISION] == "2"
    assert c.condition("Progressing")["reason"] == "NewReplicaSetAvailable"
    with lock:
        assert ready_counts and min(ready_counts) >= 2


def test_the_default_25_percent_strategy_trades_one_old_pod_for_each_new_one_within_one_unavailable(cluster):
    c = cluster(never_ready=("web:2",))
    c.create("web", replicas=4, image="web:1", strategy={})  # defaulted: RollingUpdate 25%/25% -> surge 1, 1
    wait_for("the rollout", lambda: c.rolled_out())
    strategy = c.deployment()["spec"]["strategy"]
    assert strategy == {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}}
    c.set_image("web", "web:2")
    # one surge pod, then one old pod down (4 -> 3 available, the minimum), then a second new one;
    # with the new pods never ready nothing more moves
    wait_for("old 3 / new 2", lambda: (old := c.rs_with_image("web:1")) and (new := c.rs_with_image("web:2"))
             and old["spec"]["replicas"] == 3 and new["spec"]["replicas"] == 2 and len(c.pods(image="web:2")) == 2)
    time.sleep(0.3)
    assert (c.rs_with_image("web:1")["spec"]["replicas"], c.rs_with_image("web:2")["spec"]["replicas"]) == (3, 2)
    status = c.deployment()["status"]
    assert (status["replicas"], status["updatedReplicas"], status["availableReplicas"],
            status["unavailableReplicas"]) == (5, 2, 3, 2)
    assert c.condition("Available")["status"] == "True"  # 3 >= 4 - 1


def test_an_image_that_never_becomes_ready_exceeds_the_progress_deadline_and_keeps_the_old_pods(cluster):
    c = cluster(never_ready=("web:bad",))
    c.create("web", replicas=2, image="web:1", progressDeadlineSeconds=60)
    wait_for("the rollout", lambda: c.rolled_out())
    c.set_image("web", "web:bad")
    wait_for("the stuck pod", lambda: c.pods(image="web:bad"))
    # the controller has seen all the progress there will be (its last one stamps the condition's
    # lastUpdateTime, from which the deadline runs) before the clock moves
    wait_for("the rollout's status", lambda: (st := c.deployment()["status"]).get("updatedReplicas") == 1
             and st.get("replicas") == 3 and c.condition("Progressing")["reason"] == "ReplicaSetUpdated")
    c.clock.now += 30
    c.controllers.resync()
    time.sleep(0.2)
    assert c.condition("Progressing")["reason"] != "ProgressDeadlineExceeded"  # 30 s in: not yet
    c.clock.now += 31
    progressing = wait_for("the deadline", lambda: (x := c.condition("Progressing"))
                           and x["reason"] == "ProgressDeadlineExceeded" and x)
    bad = c.rs_with_image("web:bad")
    assert (progressing["status"], progressing["message"]) == (
        "False", f'ReplicaSet "{bad["metadata"]["name"]}" has timed out progressing.')
    old = c.rs_with_image("web:1")
    assert old["spec"]["replicas"] == 2 and old["status"]["availableReplicas"] == 2
    assert bad["spec"]["replicas"] == 1
    assert (c.condition("Available")["status"], c.deployment()["status"]["unavailableReplicas"]) == ("True", 1)


def test_rolling_back_to_an_old_template_reuses_its_replica_set_with_the_next_revision(cluster):
    c = cluster()
    c.create("web", replicas=2, image="web:1")
    wait_for("the rollout", lambda: c.rolled_out())
    first = c.replica_sets()[0]
    c.edit("web", lambda d: d["metadata"].setdefault("annotations", {}).update(
        {"kubernetes.io/change-cause": "to web:2"}))
    c.set_image("web", "web:2")
    wait_for("the second rollout", lambda: c.rolled_out() and c.rs_with_image("web:2"))
    assert c.rs_with_image("web:2")["metadata"]["annotations"]["kubernetes.io/change-cause"] == "to web:2"
    # what `kubectl rollout undo` sends: the old template back (Go's zero values included)
    template = copy.deepcopy(first["spec"]["template"])
    del template["metadata"]["labels"][HASH]
    template["metadata"]["creationTimestamp"] = None
    c.edit("web", lambda d: d["spec"].__setitem__("template", template))
    wait_for("the rollback", lambda: c.rolled_out() and c.rs_with_image("web:1")["spec"]["replicas"] == 2)
    assert len(c.replica_sets()) == 2  # no third ReplicaSet
    again = c.rs_with_image("web:1")
    assert again["metadata"]["name"] == first["metadata"]["name"]
    assert again["metadata"]["annotations"][REVISION] == "3"
    assert again["metadata"]["annotations"]["deployment.kubernetes.io/revision-history"] == "1"
    assert c.deployment()["metadata"]["annotations"][REVISION] == "3"
    assert c.rs_with_image("web:2")["spec"]["replicas"] == 0


# --- scaling, pausing, history ----------------------------------------------------------------------

def test_scaling_up_and_down_resizes_the_replica_set_deleting_unready_pods_first(cluster):
    c = cluster()
    c.create("web", replicas=2)
    wait_for("the rollout", lambda: c.rolled_out())
    c.edit("web", lambda d: d["spec"].__setitem__("replicas", 4))
    wait_for("four available", lambda: c.rolled_out() and len(c.pods()) == 4)
    [rs] = c.replica_sets()
    assert rs["metadata"]["annotations"]["deployment.kubernetes.io/desired-replicas"] == "4"
    assert rs["metadata"]["annotations"]["deployment.kubernetes.io/max-replicas"] == "5"
    name = rs["metadata"]["name"]
    assert c.messages("ScalingReplicaSet")[-1] == f"Scaled up replica set {name} from 2 to 4"
    unready = c.pods()[2]["metadata"]["name"]
    c.kubelet.make_ready(NS, unready, ready=False)
    wait_for("the unready pod counted", lambda: c.replica_sets()[0]["status"].get("readyReplicas") == 3)
    c.edit("web", lambda d: d["spec"].__setitem__("replicas", 3))
    wait_for("three pods", lambda: len(c.pods()) == 3 and c.rolled_out())
    assert unready not in {p["metadata"]["name"] for p in c.pods()}
    assert c.messages("SuccessfulDelete") == [f"Deleted pod: {unready}"]
    assert c.messages("ScalingReplicaSet")[-1] == f"Scaled down replica set {name} from 4 to 3"


def test_scaling_in_the_middle_of_a_rollout_spreads_the_new_replicas_proportionally(cluster):
    c = cluster(never_ready=("web:2",))
    c.create("web", replicas=4, image="web:1")
    wait_for("the rollout", lambda: c.rolled_out())
    c.set_image("web", "web:2")
    wait_for("old 4 / new 1", lambda: (new := c.rs_with_image("web:2")) and new["spec"]["replicas"] == 1)
    old, new = c.rs_with_image("web:1")["metadata"]["name"], c.rs_with_image("web:2")["metadata"]["name"]
    c.edit("web", lambda d: d["spec"].__setitem__("replicas", 8))
    # 8 + surge 1 = 9 over sizes 4 and 1 annotated for 5: round(4 * 9 / 5) = 7 and round(1 * 9 / 5) = 2
    wait_for("old 7 / new 2", lambda: (c.rs_with_image("web:1")["spec"]["replicas"],
                                       c.rs_with_image("web:2")["spec"]["replicas"]) == (7, 2))
    assert c.messages("ScalingReplicaSet")[-2:] == [f"Scaled up replica set {old} from 4 to 7",
                                                    f"Scaled up replica set {new} from 1 to 2"]
    for rs in c.replica_sets():
        assert rs["metadata"]["annotations"]["deployment.kubernetes.io/desired-replicas"] == "8"
        assert rs["metadata"]["annotations"]["deployment.kubernetes.io/max-replicas"] == "9"


def test_a_paused_deployment_does_not_roll_out_until_resumed(cluster):
    c = cluster()
    c.create("web", replicas=2, image="web:1")
    wait_for("the rollout", lambda: c.rolled_out())
    c.edit("web", lambda d: d["spec"].__setitem__("paused", True))
    wait_for("DeploymentPaused", lambda: (x := c.condition("Progressing")) and x["reason"] == "DeploymentPaused")
    assert c.condition("Progressing")["status"] == "Unknown"
    c.set_image("web", "web:2")
    generation = c.deployment()["metadata"]["generation"]
    wait_for("the change observed", lambda: c.deployment()["status"]["observedGeneration"] == generation)
    c.clock.now += 3600  # paused for longer than the deadline: never a timeout
    c.controllers.resync()
    time.sleep(0.2)
    assert c.rs_with_image("web:2") is None and len(c.replica_sets()) == 1
    assert c.condition("Progressing")["reason"] == "DeploymentPaused"
    c.edit("web", lambda d: d["spec"].__setitem__("paused", False))
    wait_for("the rollout after resume", lambda: c.rs_with_image("web:2") and c.rolled_out())
    assert c.condition("Progressing")["reason"] == "NewReplicaSetAvailable"


def test_revision_history_limit_deletes_the_oldest_scaled_down_replica_sets(cluster):
    c = cluster()
    c.create("web", replicas=1, image="web:1", revisionHistoryLimit=1)
    wait_for("the rollout", lambda: c.rolled_out())
    for image in ("web:2", "web:3"):
        c.set_image("web", image)
        wait_for(f"the rollout of {image}", lambda: c.rs_with_image(image) and c.rolled_out())
    wait_for("the oldest ReplicaSet deleted", lambda: c.rs_with_image("web:1") is None)
    assert [rs["metadata"]["annotations"][REVISION] for rs in c.replica_sets()] == ["2", "3"]


def test_recreate_removes_every_old_pod_before_creating_the_new_replica_set(cluster):
    c = cluster()
    c.create("web", replicas=2, image="web:1", strategy={"type": "Recreate"})
    wait_for("the rollout", lambda: c.rolled_out())
    c.kubelet.hold_terminating = True
    c.set_image("web", "web:2")
    wait_for("old pods terminating", lambda: len(c.pods(image="web:1", live=False)) == 2 and not c.pods(image="web:1"))
    time.sleep(0.2)
    assert c.rs_with_image("web:2") is None  # old pods still terminating
    c.kubelet.hold_terminating = False
    for p in c.pods(image="web:1", live=False):
        c.store.delete("pods", NS, p["metadata"]["name"], grace_seconds=0)
    wait_for("the new pods", lambda: c.rolled_out() and len(c.pods(image="web:2")) == 2)
    assert c.messages("ScalingReplicaSet")[-1] == (
        f"Scaled up replica set {c.rs_with_image('web:2')['metadata']['name']} from 0 to 2")


def test_min_ready_seconds_holds_availability_until_the_clock_passes_it(cluster):
    c = cluster()
    c.create("web", replicas=1, minReadySeconds=10)
    wait_for("a ready pod", lambda: c.replica_sets() and c.replica_sets()[0]["status"].get("readyReplicas") == 1)
    time.sleep(0.2)
    assert not c.replica_sets()[0]["status"].get("availableReplicas")
    assert c.condition("Available")["status"] == "False"
    c.clock.now += 11
    wait_for("availability", lambda: c.rolled_out())
    assert c.replica_sets()[0]["spec"]["minReadySeconds"] == 10


def test_a_hash_collision_bumps_the_collision_count_and_names_another_replica_set(cluster):
    c = cluster()
    c.create("web", replicas=1, image="web:1", paused=True)  # paused: no ReplicaSet yet
    template = c.deployment()["spec"]["template"]
    taken = f"web-{compute_hash(template)}"
    c.store.create("replicasets", {"apiVersion": "apps/v1", "kind": "ReplicaSet",
                                   "metadata": {"name": taken, "namespace": NS, "labels": {"other": "x"}},
                                   "spec": {"replicas": 0, "selector": {"matchLabels": {"other": "x"}},
                                            "template": {"metadata": {"labels": {"other": "x"}},
                                                         "spec": {"containers": [{"name": "o", "image": "o"}]}}}})
    c.edit("web", lambda d: d["spec"].__setitem__("paused", False))
    wait_for("the rollout", lambda: c.rolled_out())
    [rs] = c.replica_sets()
    assert rs["metadata"]["name"] == f"web-{compute_hash(template, 1)}"
    assert c.deployment()["status"]["collisionCount"] == 1


def test_an_orphan_created_for_a_deleted_owner_is_collected(cluster):
    c = cluster()
    c.store.create("pods", {"apiVersion": "v1", "kind": "Pod",
                            "metadata": {"name": "stray", "namespace": NS, "labels": {"x": "y"},
                                         "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                                                              "name": "gone", "uid": "no-such-uid",
                                                              "controller": True}]},
                            "spec": {"containers": [{"name": "c", "image": "i"}]}})
    wait_for("the orphan deleted", lambda: not c.store.list("pods", NS)[0])
