"""The cluster's store: the API server's object rules (versions, generation, status, deletion, watch history)."""

from __future__ import annotations

import threading

import pytest

from taly_ops.local.cluster.apierrors import ApiError
from taly_ops.local.cluster.store import Store


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


def deployment(name: str = "web", replicas: int = 2, image: str = "web:1") -> dict:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": "default", "labels": {"app": name}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                         "spec": {"containers": [{"name": "app", "image": image}]}},
        },
    }


def pod(name: str, labels: dict | None = None, owner: dict | None = None) -> dict:
    meta: dict = {"name": name, "namespace": "default", "labels": labels or {"app": "web"}}
    if owner:
        meta["ownerReferences"] = [{"apiVersion": owner["apiVersion"], "kind": owner["kind"],
                                    "name": owner["metadata"]["name"], "uid": owner["metadata"]["uid"],
                                    "controller": True}]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta,
            "spec": {"containers": [{"name": "app", "image": "web:1"}]}}


@pytest.fixture
def store() -> Store:
    return Store(clock=Clock())


def error(fn, *args, **kwargs) -> ApiError:
    with pytest.raises(ApiError) as caught:
        fn(*args, **kwargs)
    return caught.value


def test_create_fills_metadata_and_defaults(store: Store) -> None:
    created = store.create("deployments", deployment())
    meta = created["metadata"]
    assert meta["generation"] == 1 and meta["uid"] and meta["creationTimestamp"] == "2023-11-14T22:13:20Z"
    assert int(meta["resourceVersion"]) > 0
    assert list(created)[:2] == ["apiVersion", "kind"]
    assert created["spec"]["strategy"]["rollingUpdate"] == {"maxUnavailable": "25%", "maxSurge": "25%"}
    assert created["spec"]["progressDeadlineSeconds"] == 600
    assert created["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] == "IfNotPresent"
    assert created["status"] == {}
    assert store.get("deployments", "default", "web") == created


def test_the_system_namespaces_exist(store: Store) -> None:
    names = [n["metadata"]["name"] for n in store.list("namespaces")[0]]
    assert names == ["default", "kube-node-lease", "kube-public", "kube-system"]
    assert store.get("namespaces", None, "default")["status"] == {"phase": "Active"}


def test_errors_are_worded_as_the_api_server(store: Store) -> None:
    store.create("deployments", deployment())
    exists = error(store.create, "deployments", deployment())
    assert (exists.code, exists.reason, exists.message) == (409, "AlreadyExists", 'deployments.apps "web" already exists')
    missing = error(store.get, "deployments", "default", "nope")
    assert missing.status() == {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": 'deployments.apps "nope" not found', "reason": "NotFound",
        "details": {"name": "nope", "group": "apps", "kind": "deployments"}, "code": 404,
    }
    assert error(store.get, "pods", "default", "p").status()["details"] == {"name": "p", "kind": "pods"}


def test_invalid_objects_are_422_with_causes(store: Store) -> None:
    bad = deployment()
    bad["spec"]["template"]["metadata"]["labels"] = {"app": "other"}
    bad["spec"]["template"]["spec"]["containers"][0].pop("image")
    err = error(store.create, "deployments", bad)
    assert (err.code, err.reason) == (422, "Invalid")
    assert err.message.startswith('Deployment.apps "web" is invalid: [spec.template.metadata.labels: Invalid value')
    fields = [c["field"] for c in err.status()["details"]["causes"]]
    assert fields == ["spec.template.metadata.labels", "spec.template.spec.containers[0].image"]
    named = error(store.create, "configmaps", {"metadata": {"name": "Bad_Name", "namespace": "default"}})
    assert named.message.startswith('ConfigMap "Bad_Name" is invalid: metadata.name: Invalid value: "Bad_Name"')
    assert error(store.create, "configmaps", {"metadata": "x"}).code == 400


def test_generate_name(store: Store) -> None:
    created = store.create("pods", {"metadata": {"generateName": "web-", "namespace": "default"},
                                    "spec": {"containers": [{"name": "a", "image": "i:1"}]}})
    name = created["metadata"]["name"]
    assert name.startswith("web-") and len(name) == 9


def test_generation_bumps_on_spec_changes_only(store: Store) -> None:
    created = store.create("replicasets", {**deployment(), "kind": "ReplicaSet"})
    labelled = store.mutate("replicasets", "default", "web", lambda o: o["metadata"]["labels"].update(x="y"))
    assert labelled["metadata"]["generation"] == 1
    assert int(labelled["metadata"]["resourceVersion"]) > int(created["metadata"]["resourceVersion"])
    scaled = store.mutate("replicasets", "default", "web", lambda o: o["spec"].update(replicas=5))
    assert scaled["metadata"]["generation"] == 2


def test_deployment_annotations_bump_generation(store: Store) -> None:
    store.create("deployments", deployment())
    annotated = store.mutate("deployments", "default", "web",
                             lambda o: o["metadata"].setdefault("annotations", {}).update(a="b"))
    assert annotated["metadata"]["generation"] == 2


def test_a_write_that_changes_nothing_is_no_write(store: Store) -> None:
    created = store.create("deployments", deployment())
    seen = []
    store.add_listener(lambda kind, plural, obj: seen.append(kind))
    same = store.update("deployments", created)
    assert same["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"] and seen == []


def test_stale_resource_version_is_a_conflict(store: Store) -> None:
    created = store.create("deployments", deployment())
    store.mutate("deployments", "default", "web", lambda o: o["spec"].update(replicas=3))
    stale = dict(created, spec={**created["spec"], "replicas": 4})
    err = error(store.update, "deployments", stale)
    assert (err.code, err.reason) == (409, "Conflict")
    assert err.message == ('Operation cannot be fulfilled on deployments.apps "web": the object has been modified; '
                           "please apply your changes to the latest version and try again")
    unconditional = dict(stale, metadata={k: v for k, v in created["metadata"].items() if k != "resourceVersion"})
    assert store.update("deployments", unconditional)["spec"]["replicas"] == 4


def test_status_is_written_only_through_the_status_subresource(store: Store) -> None:
    store.create("deployments", deployment())

    def both(o: dict) -> None:
        o["spec"]["replicas"] = 7
        o["status"] = {"replicas": 7}

    main = store.mutate("deployments", "default", "web", both)
    assert main["spec"]["replicas"] == 7 and main["status"] == {}
    status = store.mutate("deployments", "default", "web", both, subresource="status")
    assert status["status"] == {"replicas": 7} and status["spec"]["replicas"] == 7
    assert status["metadata"]["generation"] == main["metadata"]["generation"]
    # kinds without a status subresource take the whole object
    store.create("configmaps", {"metadata": {"name": "c", "namespace": "default"}, "data": {"a": "1"}})
    assert store.mutate("configmaps", "default", "c", lambda o: o["data"].update(a="2"))["data"] == {"a": "2"}


def test_returned_objects_are_copies(store: Store) -> None:
    created = store.create("deployments", deployment())
    created["spec"]["replicas"] = 99
    listed, _ = store.list("deployments")
    listed[0]["metadata"]["labels"]["x"] = "y"
    assert store.get("deployments", "default", "web")["spec"]["replicas"] == 2
    assert "x" not in store.get("deployments", "default", "web")["metadata"]["labels"]


def test_list_by_namespace_and_selectors(store: Store) -> None:
    store.create("namespaces", {"metadata": {"name": "other"}})
    store.create("pods", pod("a", {"app": "web", "tier": "front"}))
    store.create("pods", pod("b", {"app": "api"}))
    other = pod("c")
    other["metadata"]["namespace"] = "other"
    store.create("pods", other)
    names = lambda items: [o["metadata"]["name"] for o in items]  # noqa: E731
    assert names(store.list("pods")[0]) == ["a", "b", "c"]
    assert names(store.list("pods", "default")[0]) == ["a", "b"]
    assert names(store.list("pods", None, "app=web")[0]) == ["a", "c"]
    assert names(store.list("pods", None, "app in (web,api),!tier")[0]) == ["b", "c"]
    assert names(store.list("pods", None, "", "metadata.namespace!=default")[0]) == ["c"]
    assert names(store.list("pods", None, "", "status.phase=Pending,metadata.name=b")[0]) == ["b"]
    _, rv = store.list("pods")
    assert rv == store.resource_version
    assert error(store.list, "pods", None, "", "spec.bogus=1").message == "field label not supported: spec.bogus"


def test_pod_deletion_is_graceful_until_the_kubelet_finishes(store: Store) -> None:
    store.create("pods", pod("p"))
    events = []
    store.add_listener(lambda kind, plural, obj: events.append((kind, obj["metadata"].get("deletionTimestamp"))))
    terminating = store.delete("pods", "default", "p")
    assert terminating["metadata"]["deletionGracePeriodSeconds"] == 30
    assert terminating["metadata"]["deletionTimestamp"] == "2023-11-14T22:13:50Z"
    assert store.get("pods", "default", "p")["metadata"]["deletionTimestamp"]
    again = store.delete("pods", "default", "p")  # a second delete does not extend it
    assert again["metadata"]["resourceVersion"] == terminating["metadata"]["resourceVersion"]
    store.delete("pods", "default", "p", grace_seconds=0)
    assert error(store.get, "pods", "default", "p").code == 404
    assert [e[0] for e in events] == ["MODIFIED", "DELETED"]


def test_finished_pods_and_other_kinds_go_at_once(store: Store) -> None:
    store.create("pods", pod("done"))
    store.mutate("pods", "default", "done", lambda o: o["status"].update(phase="Succeeded"), subresource="status")
    store.delete("pods", "default", "done")
    assert error(store.get, "pods", "default", "done").code == 404
    store.create("deployments", deployment())
    gone = store.delete("deployments", "default", "web")
    assert gone["metadata"]["name"] == "web" and error(store.get, "deployments", "default", "web").code == 404


def test_finalizers_hold_a_deletion(store: Store) -> None:
    store.create("configmaps", {"metadata": {"name": "c", "namespace": "default", "finalizers": ["x/y"]}})
    held = store.delete("configmaps", "default", "c")
    assert held["metadata"]["deletionTimestamp"]
    store.mutate("configmaps", "default", "c", lambda o: o["metadata"].update(finalizers=[]))
    assert error(store.get, "configmaps", "default", "c").code == 404


def test_owner_references_cascade_and_orphan(store: Store) -> None:
    rs = store.create("replicasets", {**deployment("web"), "kind": "ReplicaSet"})
    store.create("pods", pod("web-1", owner=rs))
    store.create("pods", pod("web-2", owner=rs))
    store.delete("replicasets", "default", "web")
    pods, _ = store.list("pods")
    assert all(p["metadata"].get("deletionTimestamp") for p in pods) and len(pods) == 2

    kept = store.create("replicasets", {**deployment("api"), "kind": "ReplicaSet"})
    store.create("pods", pod("api-1", {"app": "api"}, owner=kept))
    store.delete("replicasets", "default", "api", propagation="Orphan")
    orphan = store.get("pods", "default", "api-1")
    assert "ownerReferences" not in orphan["metadata"] and not orphan["metadata"].get("deletionTimestamp")


def test_deleting_a_namespace_deletes_what_is_in_it(store: Store) -> None:
    store.create("namespaces", {"metadata": {"name": "gone"}})
    store.create("configmaps", {"metadata": {"name": "c", "namespace": "gone"}})
    store.delete("namespaces", None, "gone")
    assert store.list("configmaps")[0] == []


def test_watch_from_now_replays_current_objects_then_live_events(store: Store) -> None:
    store.create("pods", pod("a"))
    watch = store.watch("pods", "default")
    kind, obj = watch.next_event(1)
    assert (kind, obj["metadata"]["name"]) == ("ADDED", "a")
    assert watch.next_event(0.01) is None
    store.mutate("pods", "default", "a", lambda o: o["metadata"]["labels"].update(x="1"))
    kind, obj = watch.next_event(1)
    assert (kind, obj["metadata"]["labels"]["x"]) == ("MODIFIED", "1")
    assert watch.resource_version == obj["metadata"]["resourceVersion"]
    watch.close()
    assert watch.next_event(0.01) is None and store.watch_count() == 0


def test_watch_resumes_from_a_resource_version(store: Store) -> None:
    created = store.create("pods", pod("a"))
    store.create("pods", pod("b"))
    store.delete("pods", "default", "b", grace_seconds=0)
    watch = store.watch("pods", None, created["metadata"]["resourceVersion"])
    events = [watch.next_event(1) for _ in range(2)]
    assert [(k, o["metadata"]["name"]) for k, o in events] == [("ADDED", "b"), ("DELETED", "b")]
    assert int(events[1][1]["metadata"]["resourceVersion"]) > int(events[0][1]["metadata"]["resourceVersion"])


def test_watch_with_a_selector_sees_objects_leave_and_enter(store: Store) -> None:
    store.create("pods", pod("a", {"app": "web"}))
    watch = store.watch("pods", "default", store.resource_version, label_selector="app=web")
    store.mutate("pods", "default", "a", lambda o: o["metadata"]["labels"].update(app="api"))
    store.mutate("pods", "default", "a", lambda o: o["metadata"]["labels"].update(app="web"))
    store.create("pods", pod("b", {"app": "api"}))
    assert [watch.next_event(1)[0] for _ in range(2)] == ["DELETED", "ADDED"]
    assert watch.next_event(0.01) is None


def test_watch_older_than_history_is_410_expired() -> None:
    store = Store(clock=Clock(), history=5)
    first = store.create("configmaps", {"metadata": {"name": "c0", "namespace": "default"}})
    for i in range(1, 8):
        store.create("configmaps", {"metadata": {"name": f"c{i}", "namespace": "default"}})
    err = error(store.watch, "configmaps", None, first["metadata"]["resourceVersion"])
    assert (err.code, err.reason) == (410, "Expired")
    assert err.message.startswith("too old resource version: ")
    assert error(store.watch, "configmaps", None, "abc").code == 400


def test_watch_is_an_iterator_that_ends_on_close(store: Store) -> None:
    watch = store.watch("configmaps", "default")
    seen = []

    def consume() -> None:
        for kind, obj in watch:
            seen.append((kind, obj["metadata"]["name"]))

    thread = threading.Thread(target=consume)
    thread.start()
    store.create("configmaps", {"metadata": {"name": "c", "namespace": "default"}})
    while not seen:
        thread.join(0.01)
    watch.close()
    thread.join(5)
    assert seen == [("ADDED", "c")] and not thread.is_alive()


def test_listeners_hear_every_change_outside_the_lock(store: Store) -> None:
    heard = []

    def listener(kind: str, plural: str, obj: dict) -> None:
        # reading the store from a listener must not deadlock (it runs outside the lock)
        heard.append((kind, plural, len(store.list(plural)[0])))

    store.add_listener(listener)
    store.create("pods", pod("a"))
    store.delete("pods", "default", "a", grace_seconds=0)
    assert heard == [("ADDED", "pods", 1), ("DELETED", "pods", 0)]


def test_unknown_resources_are_not_found(store: Store) -> None:
    err = error(store.list, "widgets")
    assert (err.code, err.reason) == (404, "NotFound")


def test_the_api_server_modules_load_no_client_library() -> None:
    """The cluster process stays small: none of the project's heavy dependencies come with the API server."""
    import subprocess
    import sys

    code = ("import sys, taly_ops.local.cluster.server, taly_ops.local.cluster.store; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & "
            "{'kubernetes', 'urllib3', 'pydantic', 'typer', 'rich', 'boto3', 'cryptography'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
