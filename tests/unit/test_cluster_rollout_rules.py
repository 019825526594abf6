"""The Deployment and ReplicaSet controllers' rules, as upstream's unit tests state them: hashes and
names, maxSurge/maxUnavailable rounding, revisions, conditions, status, which pods go first."""

from __future__ import annotations

import pytest

from taly_ops.local.cluster.controllers import conditions as cond
from taly_ops.local.cluster.controllers import deployutil as du
from taly_ops.local.cluster.controllers.objects import is_pod_available, parse_time, rfc3339
from taly_ops.local.cluster.controllers.podrank import pods_to_delete
from taly_ops.local.cluster.controllers.templates import (HASH_LABEL, SAFE_ALPHABET, compute_hash, equal_ignore_hash,
                                                          safe_encode)
from taly_ops.local.cluster.controllers.workqueue import WorkQueue

NOW = 1_750_000_000.0


def template(image: str = "web:1") -> dict:
    return {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "web", "image": image}]}}


def deployment(replicas: int = 2, surge=1, unavailable=0, generation: int = 1, **spec) -> dict:
    s = {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}}, "template": template(),
         "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavailable}}}
    s.update(spec)
    return {"metadata": {"name": "web", "namespace": "cms", "uid": "d-1", "generation": generation}, "spec": s}


def rs(name: str, replicas: int, available: int = 0, revision: int | None = None, created: float = NOW,
       ready: int | None = None) -> dict:
    ann = {du.REVISION: str(revision)} if revision is not None else {}
    return {"metadata": {"name": name, "uid": name, "annotations": ann, "creationTimestamp": rfc3339(created)},
            "spec": {"replicas": replicas, "template": template()},
            "status": {"replicas": replicas, "availableReplicas": available,
                       "readyReplicas": available if ready is None else ready}}


# --- hashing ----------------------------------------------------------------------------------------

def test_the_hash_is_stable_safe_alphabet_and_salted_by_the_collision_count():
    h = compute_hash(template())
    assert h == compute_hash(template())
    assert set(h) <= set(SAFE_ALPHABET) and 1 <= len(h) <= 10
    assert compute_hash(template("web:2")) != h
    assert compute_hash(template(), 1) != h and compute_hash(template(), 1) != compute_hash(template(), 2)
    # decimal digits map to 4..9 and b, c, d, f exactly as rand.SafeEncodeString does
    assert safe_encode("0123456789") == "456789bcdf"


def test_templates_compare_ignoring_the_hash_label_and_go_zero_values():
    a = template()
    b = template()
    b["metadata"]["labels"][HASH_LABEL] = "abc"
    b["metadata"]["creationTimestamp"] = None  # what `kubectl rollout undo` patches back
    b["spec"]["containers"][0]["resources"] = {}
    assert equal_ignore_hash(a, b)
    assert not equal_ignore_hash(a, template("web:2"))


# --- fenceposts -------------------------------------------------------------------------------------

@pytest.mark.parametrize("surge, unavailable, desired, expected", [
    (1, 0, 2, (1, 0)),
    ("25%", "25%", 10, (3, 2)),        # surge rounds up, unavailable down
    ("25%", "25%", 1, (1, 0)),
    ("0%", "1%", 2, (0, 1)),           # both would be 0: unavailable becomes 1
    (0, 0, 3, (0, 1)),
    ("50%", "50%", 3, (2, 1)),
])
def test_fenceposts_round_as_upstream(surge, unavailable, desired, expected):
    assert du.resolve_fenceposts(surge, unavailable, desired) == expected


def test_a_value_that_is_not_a_percentage_is_refused():
    with pytest.raises(ValueError, match="not a percentage"):
        du.value_from_int_or_percent("3", 10, True)


def test_missing_strategy_defaults_to_rolling_25_percent():
    d = deployment(replicas=4)
    del d["spec"]["strategy"]
    assert (du.max_surge(d), du.max_unavailable(d)) == (1, 1)
    d["spec"]["strategy"] = {"type": "Recreate"}
    assert (du.max_surge(d), du.max_unavailable(d)) == (0, 0)


def test_the_new_replica_set_grows_within_replicas_plus_surge():
    d = deployment(replicas=2, surge=1, unavailable=0)
    old, new = rs("old", 2, 2), rs("new", 0)
    assert du.new_rs_new_replicas(d, [old, new], new) == 1
    assert du.new_rs_new_replicas(d, [rs("old", 2, 2), rs("new", 1)], rs("new", 1)) == 1  # at 3: no more
    assert du.new_rs_new_replicas(d, [rs("old", 1, 1), rs("new", 1)], rs("new", 1)) == 2
    d["spec"]["strategy"] = {"type": "Recreate"}
    assert du.new_rs_new_replicas(d, [old, new], new) == 2


# --- revisions --------------------------------------------------------------------------------------

def test_a_new_replica_set_takes_the_next_revision_and_the_deployments_annotations():
    d = deployment()
    d["metadata"]["annotations"] = {"kubernetes.io/change-cause": "image web:2",
                                    du.LAST_APPLIED: "{}", du.REVISION: "7"}
    new = {"metadata": {"name": "web-x"}, "spec": {"replicas": 0}}
    assert du.set_new_rs_annotations(d, new, 4, exists=False)
    ann = new["metadata"]["annotations"]
    assert ann == {"kubernetes.io/change-cause": "image web:2", du.REVISION: "4",
                   du.DESIRED_REPLICAS: "2", du.MAX_REPLICAS: "3"}


def test_a_template_rolled_back_to_bumps_its_revision_and_remembers_the_old_one():
    d = deployment()
    old = rs("web-a", 0, revision=1)
    assert du.set_new_rs_annotations(d, old, 3, exists=True)
    assert old["metadata"]["annotations"][du.REVISION] == "3"
    assert old["metadata"]["annotations"][du.REVISION_HISTORY] == "1"
    assert du.set_new_rs_annotations(d, old, 5, exists=True)
    assert old["metadata"]["annotations"][du.REVISION_HISTORY] == "1,3"
    assert not du.set_new_rs_annotations(d, old, 5, exists=True)  # never lowered, nothing changed


def test_max_revision_skips_what_is_not_a_number():
    rss = [rs("a", 0, revision=2), rs("b", 0, revision=5)]
    rss[0]["metadata"]["annotations"][du.REVISION] = "x"
    assert du.max_revision(rss) == 5


def test_the_new_replica_set_is_the_oldest_with_the_template():
    d = deployment()
    first, second = rs("first", 1, created=NOW - 10), rs("second", 1, created=NOW)
    other = rs("other", 1, created=NOW - 20)
    other["spec"]["template"] = template("web:0")
    assert du.find_new_rs(d, [second, other, first])["metadata"]["name"] == "first"
    with_replicas, every = du.find_old_rss(d, [second, other, first, rs("zero", 0)])
    # only the oldest with the template is new: a younger twin counts as old
    assert {r["metadata"]["name"] for r in every} == {"second", "other", "zero"}
    assert {r["metadata"]["name"] for r in with_replicas} == {"second", "other"}


def test_proportions_when_scaling_mid_rollout():
    # 10 replicas + surge 3 scaled to 15 (+ 3 = 18) with ReplicaSets of 8 and 5 annotated max 13:
    # each grows to round(size * 18 / 13): 8 -> 11, 5 -> 7
    d = deployment(replicas=15, surge=3, unavailable=2)
    big = rs("big", 8)
    big["metadata"]["annotations"][du.MAX_REPLICAS] = "13"
    assert du.proportion(big, d, to_add=5, added=0) == 3
    small = rs("small", 5)
    small["metadata"]["annotations"][du.MAX_REPLICAS] = "13"
    assert du.proportion(small, d, to_add=5, added=3) == 2


# --- status and conditions --------------------------------------------------------------------------

def test_status_counts_come_from_the_replica_sets():
    d = deployment(replicas=2, surge=1, unavailable=0, generation=3)
    new, old = rs("new", 1, 0, ready=0), rs("old", 2, 2)
    status = cond.calculate_status([old, new], new, d, NOW)
    assert {k: status[k] for k in ("observedGeneration", "replicas", "updatedReplicas", "readyReplicas",
                                   "availableReplicas", "unavailableReplicas")} == \
        {"observedGeneration": 3, "replicas": 3, "updatedReplicas": 1, "readyReplicas": 2, "availableReplicas": 2,
         "unavailableReplicas": 1}
    available = cond.get_condition(status, cond.AVAILABLE)
    assert (available["status"], available["reason"]) == ("True", cond.MIN_AVAILABLE)
    status = cond.calculate_status([rs("old", 2, 1)], None, d, NOW)
    assert cond.get_condition(status, cond.AVAILABLE)["reason"] == cond.MIN_UNAVAILABLE


def test_set_condition_keeps_the_transition_time_while_the_status_holds():
    status: dict = {}
    cond.set_condition(status, cond.new_condition(cond.PROGRESSING, "True", cond.NEW_RS_CREATED, "m", NOW))
    cond.set_condition(status, cond.new_condition(cond.PROGRESSING, "True", cond.NEW_RS_CREATED, "m2", NOW + 5))
    assert status["conditions"][0]["message"] == "m"  # same status and reason: untouched
    cond.set_condition(status, cond.new_condition(cond.PROGRESSING, "True", cond.RS_UPDATED, "m3", NOW + 9))
    c = status["conditions"][0]
    assert (c["reason"], c["lastUpdateTime"], c["lastTransitionTime"]) == (cond.RS_UPDATED, rfc3339(NOW + 9),
                                                                           rfc3339(NOW))


def progressing(reason: str, status: str = "True", at: float = NOW) -> dict:
    return cond.new_condition(cond.PROGRESSING, status, reason, "", at)


def test_progress_moves_the_last_update_time_and_none_for_the_deadline_times_out():
    d = deployment(replicas=2, progressDeadlineSeconds=60)
    d["status"] = {"replicas": 3, "updatedReplicas": 1, "availableReplicas": 2, "readyReplicas": 2,
                   "conditions": [progressing(cond.NEW_RS_CREATED)]}
    new, old = rs("new", 1, 0, ready=0), rs("old", 2, 2)
    # nothing moved, 60 s not passed: unchanged
    status = cond.rollout_status([old, new], new, d, NOW + 60)
    assert cond.get_condition(status, cond.PROGRESSING)["reason"] == cond.NEW_RS_CREATED
    assert cond.requeue_after(d, status, NOW + 30) == 31
    # past the deadline: ProgressDeadlineExceeded, False
    status = cond.rollout_status([old, new], new, d, NOW + 61)
    c = cond.get_condition(status, cond.PROGRESSING)
    assert (c["status"], c["reason"], c["message"]) == ("False", cond.TIMED_OUT,
                                                        'ReplicaSet "new" has timed out progressing.')
    # the new pod became ready: progress, lastUpdateTime now, lastTransitionTime kept
    ready = rs("new", 1, 0, ready=1)
    status = cond.rollout_status([old, ready], ready, d, NOW + 50)
    c = cond.get_condition(status, cond.PROGRESSING)
    assert (c["reason"], c["lastUpdateTime"], c["lastTransitionTime"]) == (cond.RS_UPDATED, rfc3339(NOW + 50),
                                                                           rfc3339(NOW))


def test_a_complete_rollout_is_new_replica_set_available():
    d = deployment(replicas=2)
    d["status"] = {"conditions": [progressing(cond.RS_UPDATED)]}
    new = rs("web-abc", 2, 2)
    status = cond.rollout_status([new], new, d, NOW + 1)
    c = cond.get_condition(status, cond.PROGRESSING)
    assert (c["reason"], c["message"]) == (cond.NEW_RS_AVAILABLE, 'ReplicaSet "web-abc" has successfully progressed.')
    assert cond.requeue_after({**d, "status": status}, status, NOW + 1) is None


def test_without_a_deadline_there_is_no_progressing_condition():
    d = deployment(progressDeadlineSeconds=du.MAX_INT32)
    d["status"] = {"conditions": [progressing(cond.RS_UPDATED)]}
    status = cond.rollout_status([rs("a", 2, 2)], rs("a", 2, 2), d, NOW)
    assert cond.get_condition(status, cond.PROGRESSING) is None


# --- pods -------------------------------------------------------------------------------------------

def pod(name: str, phase: str = "Running", ready: bool = True, ready_since: float = NOW - 100,
        created: float = NOW - 200, restarts: int = 0) -> dict:
    conditions = [{"type": "Ready", "status": "True" if ready else "False",
                   "lastTransitionTime": rfc3339(ready_since)}]
    return {"metadata": {"name": name, "uid": name, "creationTimestamp": rfc3339(created)},
            "status": {"phase": phase, "conditions": conditions,
                       "containerStatuses": [{"name": "c", "restartCount": restarts}]}}


def test_min_ready_seconds_counts_from_the_ready_transition_strictly():
    p = pod("a", ready_since=NOW - 10)
    assert is_pod_available(p, 0, NOW)
    assert not is_pod_available(p, 10, NOW)  # exactly 10 s: not yet
    assert is_pod_available(p, 9, NOW)
    assert not is_pod_available(pod("b", ready=False), 0, NOW)


def test_scale_down_deletes_pods_earliest_in_their_life_first():
    pods = [pod("running-old", created=NOW - 10000, ready_since=NOW - 9000),
            pod("pending", phase="Pending", ready=False),
            pod("not-ready", ready=False),
            pod("running-new", created=NOW - 10, ready_since=NOW - 5),
            pod("crashy", created=NOW - 10000, ready_since=NOW - 9000, restarts=4)]
    order = [p["metadata"]["name"] for p in pods_to_delete(pods, 5, NOW)]
    assert order == [p["metadata"]["name"] for p in pods]  # all of them: no sorting needed
    picked = [p["metadata"]["name"] for p in pods_to_delete(pods, 4, NOW)]
    assert picked == ["pending", "not-ready", "running-new", "crashy"]


def test_rfc3339_round_trips_and_reads_offsets():
    assert rfc3339(NOW) == "2025-06-15T15:06:40Z"
    assert parse_time(rfc3339(NOW)) == NOW
    assert parse_time("2025-06-15T17:06:40.5+02:00") == NOW + 0.5


# --- the work queue ---------------------------------------------------------------------------------

def test_the_queue_hands_a_key_to_one_worker_and_requeues_it_if_added_meanwhile():
    q = WorkQueue(lambda: NOW)
    q.add("a")
    q.add("a")
    assert len(q) == 1
    assert q.get(timeout=0) == "a"
    q.add("a")                      # while processing: not handed out again
    assert q.get(timeout=0) is None
    q.done("a")
    assert q.get(timeout=0) == "a"


def test_delayed_keys_wait_for_the_injected_clock():
    now = [NOW]
    q = WorkQueue(lambda: now[0])
    q.add_after("d", 600)
    q.tick()
    assert q.get(timeout=0) is None
    now[0] += 600
    q.tick()
    assert q.get(timeout=0) == "d"
