"""Which pods a ReplicaSet deletes first when it scales down (controller.ActivePodsWithRanks).

Earlier in their life goes first: unassigned before assigned, Pending before Unknown before Running,
not ready before ready, lower pod-deletion-cost first, ready for less time first (by logarithmic
buckets of time, so pods of about the same age tie), more container restarts first, newer first.
The "doubled up on a node" rank is not modelled: there are no nodes, every pod would tie on it.
"""

from __future__ import annotations

import functools
import math

from .objects import Obj, is_pod_ready, parse_time, ready_condition

_PHASE_ORDER = {"Pending": 0, "Unknown": 1, "Running": 2}
DELETION_COST = "controller.kubernetes.io/pod-deletion-cost"


def pods_to_delete(pods: list[Obj], count: int, now: float) -> list[Obj]:
    """getPodsToDelete: the `count` pods to delete among the active ones."""
    if count >= len(pods):
        return list(pods)
    ranked = sorted(pods, key=functools.cmp_to_key(lambda a, b: _compare(a, b, now)))
    return ranked[:count]


def _cost(pod: Obj) -> int:
    try:
        return int(((pod.get("metadata") or {}).get("annotations") or {}).get(DELETION_COST, 0))
    except ValueError:
        return 0


def _restarts(pod: Obj) -> int:
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    return max([int(s.get("restartCount") or 0) for s in statuses] + [0])


def _log_rank(t: float, now: float) -> int:
    age = (now - t) * 1e9  # nanoseconds, as upstream's logarithmicRankDiff
    return int(math.log2(age)) if age > 0 else -1


def _by_time(ti: float | None, tj: float | None, now: float, ui: str, uj: str) -> int:
    """Newer (or unknown) first, comparing logarithmic age buckets (LogarithmicScaleDown, on by default)."""
    if ti is None or tj is None:
        if ti is None and tj is None:
            return 0
        return -1 if ti is None else 1
    diff = _log_rank(ti, now) - _log_rank(tj, now)
    if diff == 0:
        return -1 if ui < uj else (1 if ui > uj else 0)
    return -1 if diff < 0 else 1


def _compare(a: Obj, b: Obj, now: float) -> int:
    node_a = (a.get("spec") or {}).get("nodeName") or ""
    node_b = (b.get("spec") or {}).get("nodeName") or ""
    if node_a != node_b and (not node_a or not node_b):
        return -1 if not node_a else 1
    phase_a = _PHASE_ORDER.get((a.get("status") or {}).get("phase"), 0)
    phase_b = _PHASE_ORDER.get((b.get("status") or {}).get("phase"), 0)
    if phase_a != phase_b:
        return -1 if phase_a < phase_b else 1
    ready_a, ready_b = is_pod_ready(a), is_pod_ready(b)
    if ready_a != ready_b:
        return -1 if not ready_a else 1
    if _cost(a) != _cost(b):
        return -1 if _cost(a) < _cost(b) else 1
    uid_a = a["metadata"].get("uid", "")
    uid_b = b["metadata"].get("uid", "")
    if ready_a and ready_b:
        ta = parse_time((ready_condition(a) or {}).get("lastTransitionTime"))
        tb = parse_time((ready_condition(b) or {}).get("lastTransitionTime"))
        if ta != tb:
            return _by_time(ta, tb, now, uid_a, uid_b)
    if _restarts(a) != _restarts(b):
        return -1 if _restarts(a) > _restarts(b) else 1
    ca = parse_time(a["metadata"].get("creationTimestamp"))
    cb = parse_time(b["metadata"].get("creationTimestamp"))
    if ca != cb:
        return _by_time(ca, cb, now, uid_a, uid_b)
    return 0
