"""A Deployment's status: the counts, and the Progressing and Available conditions as upstream sets them.

`rollout_status` is syncRolloutStatus without the write: what `kubectl rollout status` reads (a
ProgressDeadlineExceeded reason, updated/available counts) comes from here.
"""

from __future__ import annotations

import copy

from .deployutil import (actual_replicas, available_replicas, max_unavailable, progress_deadline, ready_replicas,
                         spec_replicas)
from .objects import Obj, parse_time, replicas_of, rfc3339

PROGRESSING = "Progressing"
AVAILABLE = "Available"
REPLICA_FAILURE = "ReplicaFailure"

# Progressing reasons
RS_UPDATED = "ReplicaSetUpdated"
RS_CREATE_ERROR = "ReplicaSetCreateError"
NEW_RS_CREATED = "NewReplicaSetCreated"
FOUND_NEW_RS = "FoundNewReplicaSet"
NEW_RS_AVAILABLE = "NewReplicaSetAvailable"
TIMED_OUT = "ProgressDeadlineExceeded"
PAUSED = "DeploymentPaused"
RESUMED = "DeploymentResumed"
# Available reasons
MIN_AVAILABLE = "MinimumReplicasAvailable"
MIN_UNAVAILABLE = "MinimumReplicasUnavailable"


def new_condition(ctype: str, status: str, reason: str, message: str, now: float) -> Obj:
    stamp = rfc3339(now)
    return {"type": ctype, "status": status, "lastUpdateTime": stamp, "lastTransitionTime": stamp,
            "reason": reason, "message": message}


def get_condition(status: Obj | None, ctype: str) -> Obj | None:
    for c in (status or {}).get("conditions") or []:
        if c.get("type") == ctype:
            return c
    return None


def set_condition(status: Obj, condition: Obj) -> None:
    """SetDeploymentCondition: nothing if status and reason are unchanged; lastTransitionTime kept
    while the status stays the same; the condition moves to the end of the list."""
    current = get_condition(status, condition["type"])
    if current and current.get("status") == condition["status"] and current.get("reason") == condition["reason"]:
        return
    if current and current.get("status") == condition["status"]:
        condition = {**condition, "lastTransitionTime": current.get("lastTransitionTime")}
    remove_condition(status, condition["type"])
    status.setdefault("conditions", []).append(condition)


def remove_condition(status: Obj, ctype: str) -> None:
    kept = [c for c in status.get("conditions") or [] if c.get("type") != ctype]
    if kept:
        status["conditions"] = kept
    else:
        status.pop("conditions", None)


# --- status -----------------------------------------------------------------------------------------

def calculate_status(all_rss: list[Obj | None], new_rs: Obj | None, d: Obj, now: float) -> Obj:
    """calculateStatus: the counts from the ReplicaSets' statuses, conditions carried over, Available set."""
    available = available_replicas(all_rss)
    unavailable = max(spec_replicas(all_rss) - available, 0)
    old = d.get("status") or {}
    status: Obj = {
        "observedGeneration": (d.get("metadata") or {}).get("generation", 0),
        "replicas": actual_replicas(all_rss),
        "updatedReplicas": actual_replicas([new_rs]),
        "readyReplicas": ready_replicas(all_rss),
        "availableReplicas": available,
        "unavailableReplicas": unavailable,
    }
    if old.get("collisionCount") is not None:
        status["collisionCount"] = old["collisionCount"]
    if old.get("conditions"):
        status["conditions"] = copy.deepcopy(old["conditions"])
    if available >= replicas_of(d) - max_unavailable(d):
        set_condition(status, new_condition(AVAILABLE, "True", MIN_AVAILABLE,
                                            "Deployment has minimum availability.", now))
    else:
        set_condition(status, new_condition(AVAILABLE, "False", MIN_UNAVAILABLE,
                                            "Deployment does not have minimum availability.", now))
    return status


def deployment_complete(d: Obj, status: Obj) -> bool:
    """Every desired replica updated and available, no old one left, the latest spec observed."""
    desired = replicas_of(d)
    return (status.get("updatedReplicas", 0) == desired and status.get("replicas", 0) == desired
            and status.get("availableReplicas", 0) == desired
            and status.get("observedGeneration", 0) >= (d.get("metadata") or {}).get("generation", 0))


def deployment_progressing(d: Obj, status: Obj) -> bool:
    """New pods added, ready or available, or old ones gone, since the status the Deployment has."""
    old = d.get("status") or {}
    old_olds = old.get("replicas", 0) - old.get("updatedReplicas", 0)
    new_olds = status.get("replicas", 0) - status.get("updatedReplicas", 0)
    return (status.get("updatedReplicas", 0) > old.get("updatedReplicas", 0) or new_olds < old_olds
            or status.get("readyReplicas", 0) > old.get("readyReplicas", 0)
            or status.get("availableReplicas", 0) > old.get("availableReplicas", 0))


def deployment_timed_out(d: Obj, status: Obj, now: float) -> bool:
    """No progress reported for progressDeadlineSeconds (or the timeout already recorded)."""
    deadline = progress_deadline(d)
    if deadline is None:
        return False
    cond = get_condition(status, PROGRESSING)
    if cond is None or cond.get("reason") == NEW_RS_AVAILABLE:
        return False
    if cond.get("reason") == TIMED_OUT:
        return True
    since = parse_time(cond.get("lastUpdateTime"))
    return since is not None and since + deadline < now


def rollout_status(all_rss: list[Obj | None], new_rs: Obj | None, d: Obj, now: float) -> Obj:
    """syncRolloutStatus's new status: counts, Available, and Progressing moved on by what happened."""
    status = calculate_status(all_rss, new_rs, d, now)
    has_deadline = progress_deadline(d) is not None
    if not has_deadline:
        remove_condition(status, PROGRESSING)
    current = get_condition(d.get("status"), PROGRESSING)
    complete_before = (status["replicas"] == status["updatedReplicas"] and current is not None
                       and current.get("reason") == NEW_RS_AVAILABLE)
    if has_deadline and not complete_before:
        name = new_rs["metadata"]["name"] if new_rs else None
        what = f'ReplicaSet "{name}"' if name else f'Deployment "{d["metadata"]["name"]}"'
        if deployment_complete(d, status):
            set_condition(status, new_condition(PROGRESSING, "True", NEW_RS_AVAILABLE,
                                                f"{what} has successfully progressed.", now))
        elif deployment_progressing(d, status):
            cond = new_condition(PROGRESSING, "True", RS_UPDATED, f"{what} is progressing.", now)
            # Same reason, new lastUpdateTime: progress resets the deadline (set_condition would not).
            if current is not None:
                if current.get("status") == "True":
                    cond["lastTransitionTime"] = current.get("lastTransitionTime")
                remove_condition(status, PROGRESSING)
            set_condition(status, cond)
        elif deployment_timed_out(d, status, now):
            set_condition(status, new_condition(PROGRESSING, "False", TIMED_OUT,
                                                f"{what} has timed out progressing.", now))
    failures = _replica_failures(all_rss, new_rs)
    if failures:
        set_condition(status, failures[0])
    else:
        remove_condition(status, REPLICA_FAILURE)
    return status


def _replica_failures(all_rss: list[Obj | None], new_rs: Obj | None) -> list[Obj]:
    """ReplicaFailure conditions of the ReplicaSets (the new one's first), as Deployment conditions."""
    def of(rs: Obj) -> list[Obj]:
        return [{"type": c["type"], "status": c.get("status"), "lastUpdateTime": c.get("lastTransitionTime"),
                 "lastTransitionTime": c.get("lastTransitionTime"), "reason": c.get("reason"),
                 "message": c.get("message")}
                for c in (rs.get("status") or {}).get("conditions") or [] if c.get("type") == REPLICA_FAILURE]
    found = of(new_rs) if new_rs is not None else []
    if found:
        return found
    return [c for rs in all_rss if rs is not None for c in of(rs)]


def requeue_after(d: Obj, status: Obj, now: float) -> float | None:
    """requeueStuckDeployment: seconds until the deadline check is due (0: now), None: not needed."""
    deadline = progress_deadline(d)
    current = get_condition(d.get("status"), PROGRESSING)
    if deadline is None or current is None:
        return None
    if deployment_complete(d, status) or current.get("reason") == TIMED_OUT:
        return None
    since = parse_time(current.get("lastUpdateTime")) or now
    after = since + deadline - now
    return 0.0 if after < 1 else after + 1
