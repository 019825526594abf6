"""Pod status as the kubelet writes it: container states, phase (getPhase), conditions, QoS class."""

from __future__ import annotations

import pytest

from taly_ops.local.cluster.podstatus import Container, phase, pod_status, qos_class, rfc3339, terminated

T0 = 1_700_000_000.0
POD = {"metadata": {"name": "auth-1", "namespace": "taly"},
       "spec": {"containers": [{"name": "auth", "image": "r/taly/auth:1@sha256:" + "a" * 64,
                                "resources": {"requests": {"cpu": "100m", "memory": "128Mi"},
                                              "limits": {"cpu": "500m", "memory": "512Mi"}}}]}}


def running(ready=True, restarts=0, last=None):
    return Container("auth", "img", image_id="r/taly/auth@sha256:x", container_id="taly://c1", running_since=T0,
                     ready=ready, started=True, restart_count=restarts, last_terminated=last)


def test_a_running_ready_container_and_its_pod():
    s = pod_status(POD, [running()], "127.0.20.1", "127.0.0.1", T0, T0 + 5)
    assert s["phase"] == "Running" and s["podIP"] == "127.0.20.1" and s["podIPs"] == [{"ip": "127.0.20.1"}]
    assert s["hostIP"] == "127.0.0.1" and s["startTime"] == rfc3339(T0) and s["qosClass"] == "Burstable"
    cs = s["containerStatuses"][0]
    assert cs == {"name": "auth", "state": {"running": {"startedAt": rfc3339(T0)}}, "lastState": {}, "ready": True,
                  "restartCount": 0, "image": "img", "imageID": "r/taly/auth@sha256:x", "started": True,
                  "containerID": "taly://c1"}
    assert [(c["type"], c["status"]) for c in s["conditions"]] == [
        ("PodReadyToStartContainers", "True"), ("Initialized", "True"), ("Ready", "True"),
        ("ContainersReady", "True"), ("PodScheduled", "True")]


def test_running_but_not_ready_names_the_unready_containers():
    s = pod_status(POD, [running(ready=False)], "ip", "127.0.0.1", T0, T0)
    ready = {c["type"]: c for c in s["conditions"]}["Ready"]
    assert s["phase"] == "Running"
    assert (ready["status"], ready["reason"], ready["message"]) == (
        "False", "ContainersNotReady", "containers with unready status: [auth]")


def test_crash_loop_back_off_is_running_phase_with_last_state():
    last = terminated(1, T0, T0 + 1, "taly://c1")
    c = Container("auth", "img", container_id="taly://c1", restart_count=2, last_terminated=last,
                  waiting=("CrashLoopBackOff", "back-off 20s restarting failed container=auth pod=auth-1_taly(u)"))
    s = pod_status(POD, [c], "ip", "127.0.0.1", T0, T0 + 30)
    cs = s["containerStatuses"][0]
    assert s["phase"] == "Running"
    assert cs["state"]["waiting"]["reason"] == "CrashLoopBackOff" and cs["restartCount"] == 2
    assert cs["lastState"]["terminated"] == {"exitCode": 1, "reason": "Error", "startedAt": rfc3339(T0),
                                             "finishedAt": rfc3339(T0 + 1), "containerID": "taly://c1"}
    assert cs["ready"] is False and cs["started"] is False


def test_an_image_that_cannot_be_pulled_leaves_the_pod_pending_without_ids():
    c = Container("auth", "img", waiting=("ImagePullBackOff", 'Back-off pulling image "img"'))
    s = pod_status(POD, [c], "ip", "127.0.0.1", T0, T0)
    cs = s["containerStatuses"][0]
    assert s["phase"] == "Pending" and cs["imageID"] == "" and "containerID" not in cs
    assert cs["state"] == {"waiting": {"reason": "ImagePullBackOff", "message": 'Back-off pulling image "img"'}}
    assert pod_status(POD, [Container("auth", "img")], "ip", "h", T0, T0)["containerStatuses"][0]["state"] == \
        {"waiting": {"reason": "ContainerCreating"}}


@pytest.mark.parametrize("codes, policy, expected", [
    ([0, 0], "Never", "Succeeded"), ([0, 1], "Never", "Failed"), ([0, 1], "OnFailure", "Running"),
    ([0, 0], "OnFailure", "Succeeded"), ([1], "Always", "Running"),
])
def test_phase_of_stopped_containers_follows_the_restart_policy(codes, policy, expected):
    statuses = [{"state": {"terminated": {"exitCode": c}}} for c in codes]
    assert phase(statuses, policy) == expected


def test_phase_is_pending_while_any_container_has_never_run():
    assert phase([{"state": {"running": {}}}, {"state": {"waiting": {"reason": "ContainerCreating"}}}], "Always") \
        == "Pending"


def test_conditions_keep_their_transition_time_until_their_status_changes():
    first = pod_status(POD, [running(ready=False)], "ip", "h", T0, T0)
    pod = {**POD, "status": first}
    same = pod_status(pod, [running(ready=False)], "ip", "h", T0, T0 + 50)
    assert same["conditions"] == first["conditions"]
    pod = {**POD, "status": same}
    flipped = {c["type"]: c for c in pod_status(pod, [running()], "ip", "h", T0, T0 + 60)["conditions"]}
    assert flipped["Ready"]["lastTransitionTime"] == rfc3339(T0 + 60)
    assert flipped["PodScheduled"]["lastTransitionTime"] == rfc3339(T0)
    assert "reason" not in flipped["Ready"]


@pytest.mark.parametrize("resources, qos", [
    ({}, "BestEffort"),
    ({"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"cpu": "1", "memory": "1Gi"}}, "Guaranteed"),
    ({"limits": {"cpu": "1", "memory": "1Gi"}}, "Guaranteed"),
    ({"requests": {"cpu": "1"}}, "Burstable"),
])
def test_qos_class(resources, qos):
    assert qos_class({"spec": {"containers": [{"name": "c", "resources": resources}]}}) == qos


def test_readiness_gates_hold_ready_until_their_condition_is_true_and_others_conditions_are_kept():
    gated = {**POD, "spec": {**POD["spec"], "readinessGates": [{"conditionType": "example.com/lb-ready"}]}}
    s = pod_status(gated, [running()], "ip", "h", T0, T0)
    ready = {c["type"]: c for c in s["conditions"]}["Ready"]
    assert (ready["status"], ready["reason"]) == ("False", "ReadinessGatesNotReady")
    assert ready["message"] == 'corresponding condition of pod readiness gate "example.com/lb-ready" does not exist.'
    assert {c["type"]: c["status"] for c in s["conditions"]}["ContainersReady"] == "True"

    gate = {"type": "example.com/lb-ready", "status": "True", "lastTransitionTime": rfc3339(T0 + 3)}
    s = pod_status({**gated, "status": {**s, "conditions": s["conditions"] + [gate]}}, [running()], "ip", "h", T0, T0 + 5)
    conds = {c["type"]: c for c in s["conditions"]}
    assert conds["Ready"]["status"] == "True" and conds["example.com/lb-ready"] == gate


def test_a_pod_with_init_containers_is_not_initialized():
    pod = {**POD, "spec": {**POD["spec"], "initContainers": [{"name": "migrate", "image": "x"}]}}
    s = pod_status(pod, [Container("auth", "img", waiting=("CreateContainerConfigError", "init containers ..."))],
                   "ip", "h", T0, T0)
    init = {c["type"]: c for c in s["conditions"]}["Initialized"]
    assert (init["status"], init["reason"], init["message"]) == (
        "False", "ContainersNotInitialized", "containers with incomplete status: [migrate]")
    assert s["phase"] == "Pending"
