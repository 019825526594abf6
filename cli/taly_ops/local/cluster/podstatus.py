"""A pod's status as the kubelet writes it: container statuses, conditions, phase, IPs, QoS class.

Pure: built from what the kubelet knows of each container (`Container`) and the pod's previous
status (conditions keep their lastTransitionTime until their status changes), so it is tested
without processes. Field names, reasons and messages are the kubelet's (pkg/kubelet/status,
kubelet_pods.go getPhase), because kubectl and the controllers read them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

Obj = dict[str, Any]
CONDITION_ORDER = ("PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled")


def rfc3339(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


@dataclass
class Container:
    """What the kubelet knows of one container of a pod."""

    name: str
    image: str                              # as the pod spec names it
    image_id: str = ""                      # repository@sha256:..., once pulled
    container_id: str = ""                  # taly://<64 hex>, once created
    running_since: float | None = None      # running: since when
    waiting: tuple[str, str] | None = None  # (reason, message) when not running
    terminated: Obj | None = None           # state.terminated when it will not run again
    last_terminated: Obj | None = None      # lastState.terminated: the run before the current one
    restart_count: int = 0
    ready: bool = False
    started: bool = False

    def status(self) -> Obj:
        if self.running_since is not None:
            state: Obj = {"running": {"startedAt": rfc3339(self.running_since)}}
        elif self.terminated is not None:
            state = {"terminated": dict(self.terminated)}
        else:
            reason, message = self.waiting or ("ContainerCreating", "")
            state = {"waiting": {"reason": reason, **({"message": message} if message else {})}}
        out: Obj = {"name": self.name, "state": state,
                    "lastState": {"terminated": dict(self.last_terminated)} if self.last_terminated else {},
                    "ready": self.ready and self.running_since is not None, "restartCount": self.restart_count,
                    "image": self.image, "imageID": self.image_id,
                    "started": self.started and self.running_since is not None}
        if self.container_id:
            out["containerID"] = self.container_id
        return out


def terminated(exit_code: int, started: float, finished: float, container_id: str) -> Obj:
    return {"exitCode": exit_code, "reason": "Completed" if exit_code == 0 else "Error",
            "startedAt": rfc3339(started), "finishedAt": rfc3339(finished), "containerID": container_id}


def phase(statuses: list[Obj], restart_policy: str) -> str:
    """getPhase of kubelet_pods.go for a pod without init containers."""
    waiting = running = stopped = succeeded = unknown = 0
    for s in statuses:
        state = s.get("state") or {}
        if "running" in state:
            running += 1
        elif "terminated" in state:
            stopped += 1
            succeeded += state["terminated"].get("exitCode") == 0
        elif "waiting" in state:
            if (s.get("lastState") or {}).get("terminated"):
                stopped += 1
            else:
                waiting += 1
        else:
            unknown += 1
    if waiting:
        return "Pending"
    if running and not unknown:
        return "Running"
    if not running and stopped and not unknown:
        if restart_policy == "Always":
            return "Running"
        if stopped == succeeded:
            return "Succeeded"
        return "Running" if restart_policy == "OnFailure" else "Failed"
    return "Pending"


def conditions(previous: list[Obj], wanted: dict[str, tuple[str, str, str]], now: float) -> list[Obj]:
    """wanted: {type: (status, reason, message)}; lastTransitionTime moves only when the status does."""
    before = {c.get("type"): c for c in previous or []}
    out = []
    for ctype in CONDITION_ORDER:
        if ctype not in wanted:
            continue
        status, reason, message = wanted[ctype]
        old = before.get(ctype)
        since = old["lastTransitionTime"] if old and old.get("status") == status and old.get("lastTransitionTime") \
            else rfc3339(now)
        c: Obj = {"type": ctype, "status": status, "lastProbeTime": None, "lastTransitionTime": since}
        if reason:
            c["reason"] = reason
        if message:
            c["message"] = message
        out.append(c)
    return out + [c for c in previous or [] if c.get("type") not in CONDITION_ORDER]   # others' (readiness gates)


def qos_class(pod: Obj) -> str:
    """Guaranteed (limits = requests for cpu and memory everywhere), BestEffort (none at all), else Burstable."""
    containers = (pod.get("spec") or {}).get("containers") or []
    requests_any, guaranteed = False, bool(containers)
    for c in containers:
        res = c.get("resources") or {}
        req, lim = res.get("requests") or {}, res.get("limits") or {}
        if req or lim:
            requests_any = True
        for r in ("cpu", "memory"):
            if r not in lim or req.get(r, lim[r]) != lim[r]:
                guaranteed = False
    if not requests_any:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"


def _readiness_gates(spec: Obj, previous: list[Obj]) -> tuple[str, str, str] | None:
    """Ready's (False, reason, message) while a readiness gate's condition is not True, as generate.go words it."""
    have = {c.get("type"): c.get("status") for c in previous}
    for gate in spec.get("readinessGates") or []:
        ctype = gate.get("conditionType")
        if ctype not in have:
            return "False", "ReadinessGatesNotReady", f'corresponding condition of pod readiness gate "{ctype}" does not exist.'
        if have[ctype] != "True":
            return "False", "ReadinessGatesNotReady", \
                f'the status of pod readiness gate "{ctype}" is not "True", but {have[ctype]}'
    return None


def pod_status(pod: Obj, containers: list[Container], pod_ip: str, host_ip: str, start_time: float,
               now: float) -> Obj:
    """The whole status subresource of a pod the kubelet runs."""
    spec = pod.get("spec") or {}
    previous = (pod.get("status") or {}).get("conditions") or []
    statuses = [c.status() for c in containers]
    unready = [s["name"] for s in statuses if not s["ready"]]
    ok = ("True", "", "")
    not_ready = ("False", "ContainersNotReady", f"containers with unready status: [{' '.join(unready)}]")
    init = [c.get("name", "") for c in spec.get("initContainers") or []]   # never run: see lifecycle.step
    wanted = {"PodScheduled": ok, "PodReadyToStartContainers": ok,
              "Initialized": ("False", "ContainersNotInitialized", f"containers with incomplete status: [{' '.join(init)}]")
              if init else ok,
              "ContainersReady": not_ready if unready else ok,
              "Ready": not_ready if unready else (_readiness_gates(spec, previous) or ok)}
    return {
        "phase": phase(statuses, spec.get("restartPolicy") or "Always"), "conditions": conditions(previous, wanted, now),
        "hostIP": host_ip, "hostIPs": [{"ip": host_ip}], "podIP": pod_ip, "podIPs": [{"ip": pod_ip}],
        "startTime": rfc3339(start_time), "containerStatuses": statuses, "qosClass": qos_class(pod),
    }
