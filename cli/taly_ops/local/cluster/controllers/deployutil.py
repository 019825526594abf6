"""The Deployment controller's arithmetic, as upstream's deployment/util: revisions, annotations,
maxSurge/maxUnavailable, how far the new ReplicaSet may grow, proportions when scaling mid-rollout.

Pure functions over JSON objects; nothing here touches the store.
"""

from __future__ import annotations

import math
from typing import Any

from .objects import Obj, annotations, meta, parse_time, replicas_of
from .templates import equal_ignore_hash

REVISION = "deployment.kubernetes.io/revision"
REVISION_HISTORY = "deployment.kubernetes.io/revision-history"
DESIRED_REPLICAS = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
ROLLBACK_TO = "deprecated.deployment.rollback.to"
# Never copied from a Deployment to its ReplicaSets (nor back by `rollout undo`).
ANNOTATIONS_TO_SKIP = frozenset({LAST_APPLIED, REVISION, REVISION_HISTORY, DESIRED_REPLICAS, MAX_REPLICAS,
                                 ROLLBACK_TO})
MAX_REV_HISTORY_CHARS = 2000  # the controller's default --deployment-controller revision history length
MAX_INT32 = 2**31 - 1

DEFAULT_PROGRESS_DEADLINE = 600
DEFAULT_REVISION_HISTORY_LIMIT = 10


# --- spec, with the API server's defaults -----------------------------------------------------------

def strategy_type(d: Obj) -> str:
    return ((d.get("spec") or {}).get("strategy") or {}).get("type") or "RollingUpdate"


def is_rolling_update(d: Obj) -> bool:
    return strategy_type(d) == "RollingUpdate"


def rolling_params(d: Obj) -> tuple[Any, Any]:
    """(maxSurge, maxUnavailable) as given, 25%/25% when absent (apps/v1 defaults)."""
    ru = ((d.get("spec") or {}).get("strategy") or {}).get("rollingUpdate") or {}
    surge = ru.get("maxSurge")
    unavailable = ru.get("maxUnavailable")
    return ("25%" if surge is None else surge), ("25%" if unavailable is None else unavailable)


def progress_deadline(d: Obj) -> int | None:
    """spec.progressDeadlineSeconds (default 600); None when there is none (MaxInt32)."""
    value = (d.get("spec") or {}).get("progressDeadlineSeconds")
    value = DEFAULT_PROGRESS_DEADLINE if value is None else int(value)
    return None if value == MAX_INT32 else value


def revision_history_limit(d: Obj) -> int | None:
    value = (d.get("spec") or {}).get("revisionHistoryLimit")
    value = DEFAULT_REVISION_HISTORY_LIMIT if value is None else int(value)
    return None if value == MAX_INT32 else value


def min_ready_seconds(obj: Obj) -> int:
    return int((obj.get("spec") or {}).get("minReadySeconds") or 0)


def is_paused(d: Obj) -> bool:
    return bool((d.get("spec") or {}).get("paused"))


# --- intstr and fenceposts --------------------------------------------------------------------------

def value_from_int_or_percent(value: Any, total: int, round_up: bool) -> int:
    """intstr.GetValueFromIntOrPercent: an int as is; "N%" of total, rounded up or down. ValueError else."""
    if isinstance(value, bool):
        raise ValueError(f"invalid value for IntOrString: {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.endswith("%"):
        try:
            percent = int(value[:-1])
        except ValueError:
            raise ValueError(f"invalid value for IntOrString: invalid value {value!r}") from None
        exact = percent * total / 100
        return math.ceil(exact) if round_up else math.floor(exact)
    raise ValueError(f"invalid value for IntOrString: invalid type: string is not a percentage: {value!r}")


def resolve_fenceposts(max_surge: Any, max_unavailable: Any, desired: int) -> tuple[int, int]:
    """(surge, unavailable): surge rounds up, unavailable down; both 0 would deadlock, so unavailable 1."""
    surge = value_from_int_or_percent(0 if max_surge is None else max_surge, desired, True)
    unavailable = value_from_int_or_percent(0 if max_unavailable is None else max_unavailable, desired, False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


def max_surge(d: Obj) -> int:
    if not is_rolling_update(d):
        return 0
    return resolve_fenceposts(*rolling_params(d), replicas_of(d))[0]


def max_unavailable(d: Obj) -> int:
    replicas = replicas_of(d)
    if not is_rolling_update(d) or replicas == 0:
        return 0
    return min(resolve_fenceposts(*rolling_params(d), replicas)[1], replicas)


# --- replica counts ---------------------------------------------------------------------------------

def spec_replicas(rss: list[Obj | None]) -> int:
    return sum(replicas_of(rs) for rs in rss if rs is not None)


def _status_sum(rss: list[Obj | None], field: str) -> int:
    return sum(int((rs.get("status") or {}).get(field) or 0) for rs in rss if rs is not None)


def actual_replicas(rss: list[Obj | None]) -> int:
    return _status_sum(rss, "replicas")


def ready_replicas(rss: list[Obj | None]) -> int:
    return _status_sum(rss, "readyReplicas")


def available_replicas(rss: list[Obj | None]) -> int:
    return _status_sum(rss, "availableReplicas")


def new_rs_new_replicas(d: Obj, all_rss: list[Obj | None], new_rs: Obj) -> int:
    """NewRSNewReplicas: how far the new ReplicaSet may grow now (rolling: within replicas + maxSurge)."""
    desired = replicas_of(d)
    current = replicas_of(new_rs)
    if is_rolling_update(d):
        surge = value_from_int_or_percent(rolling_params(d)[0], desired, True)
        total = spec_replicas(all_rss)
        if total >= desired + surge:
            return current
        return current + min(desired + surge - total, desired - current)
    if strategy_type(d) == "Recreate":
        return desired
    raise ValueError(f"deployment strategy type {strategy_type(d)!r} isn't supported")


def int_annotation(rs: Obj, key: str) -> int | None:
    try:
        return int(annotations(rs)[key])
    except (KeyError, ValueError):
        return None


def is_saturated(d: Obj, rs: Obj | None) -> bool:
    """The new ReplicaSet owns every desired replica, and they are all available."""
    if rs is None:
        return False
    desired = replicas_of(d)
    return (replicas_of(rs) == desired and int_annotation(rs, DESIRED_REPLICAS) == desired
            and int((rs.get("status") or {}).get("availableReplicas") or 0) == desired)


def proportion(rs: Obj | None, d: Obj, to_add: int, added: int) -> int:
    """GetProportion: this ReplicaSet's share of a scaling event in the middle of a rollout."""
    if rs is None or replicas_of(rs) == 0 or to_add == 0 or to_add == added:
        return 0
    fraction = _rs_fraction(rs, d)
    allowed = to_add - added
    return min(fraction, allowed) if to_add > 0 else max(fraction, allowed)


def _rs_fraction(rs: Obj, d: Obj) -> int:
    if replicas_of(d) == 0:
        return -replicas_of(rs)
    deployment_replicas = replicas_of(d) + max_surge(d)
    annotated = int_annotation(rs, MAX_REPLICAS)
    if annotated is None:
        annotated = int((d.get("status") or {}).get("replicas") or 0)
    new_size = replicas_of(rs) * deployment_replicas / annotated if annotated else replicas_of(rs)
    return _round_half_away(new_size) - replicas_of(rs)


def _round_half_away(x: float) -> int:
    """integer.RoundToInt32: math.Round, halves away from zero (Python's round() goes to even)."""
    return int(math.floor(x + 0.5)) if x >= 0 else -int(math.floor(-x + 0.5))


# --- revisions and annotations ----------------------------------------------------------------------

def revision(obj: Obj | None) -> int:
    """The revision annotation; 0 when absent, -1 when it is not a number (skipped, as upstream)."""
    if obj is None:
        return 0
    value = annotations(obj).get(REVISION)
    if value is None:
        return 0
    try:
        return int(value)
    except ValueError:
        return -1


def max_revision(rss: list[Obj]) -> int:
    return max([revision(rs) for rs in rss] + [0])


def set_replicas_annotations(rs: Obj, desired: int, max_replicas: int) -> bool:
    ann = meta(rs).setdefault("annotations", {})
    changed = False
    for key, value in ((DESIRED_REPLICAS, str(desired)), (MAX_REPLICAS, str(max_replicas))):
        if ann.get(key) != value:
            ann[key] = value
            changed = True
    return changed


def replicas_annotations_need_update(rs: Obj, desired: int, max_replicas: int) -> bool:
    ann = annotations(rs)
    return ann.get(DESIRED_REPLICAS) != str(desired) or ann.get(MAX_REPLICAS) != str(max_replicas)


def copy_deployment_annotations(d: Obj, rs: Obj) -> bool:
    """The Deployment's annotations (change-cause...) onto its new ReplicaSet, but for ANNOTATIONS_TO_SKIP."""
    ann = meta(rs).setdefault("annotations", {})
    changed = False
    for k, v in annotations(d).items():
        if k in ANNOTATIONS_TO_SKIP or ann.get(k) == v:
            continue
        ann[k] = v
        changed = True
    return changed


def set_new_rs_annotations(d: Obj, rs: Obj, new_revision: int, exists: bool) -> bool:
    """SetNewReplicaSetAnnotations: copy annotations; raise the revision to new_revision if lower,
    remembering the old one in revision-history (a template rolled back to); replica annotations on
    a ReplicaSet about to be created. True when anything changed."""
    changed = copy_deployment_annotations(d, rs)
    ann = meta(rs).setdefault("annotations", {})
    had_revision = REVISION in ann
    old = ann.get(REVISION, "")
    try:
        old_int = int(old) if old else 0
    except ValueError:
        return False
    if old_int < new_revision:
        ann[REVISION] = str(new_revision)
        changed = True
        if had_revision:
            _append_revision_history(ann, old)
    if not exists and set_replicas_annotations(rs, replicas_of(d), replicas_of(d) + max_surge(d)):
        changed = True
    return changed


def _append_revision_history(ann: dict[str, str], old: str) -> None:
    history = ann.get(REVISION_HISTORY, "")
    if not history:
        ann[REVISION_HISTORY] = old
        return
    olds = history.split(",")
    total = len(history) + len(old) + 1
    start = 0
    while total > MAX_REV_HISTORY_CHARS and start < len(olds):
        total -= len(olds[start]) + 1
        start += 1
    if total <= MAX_REV_HISTORY_CHARS:
        ann[REVISION_HISTORY] = ",".join(olds[start:] + [old])


# --- finding the new and old ReplicaSets ------------------------------------------------------------

def by_creation(rs: Obj) -> tuple[float, str]:
    """controller.ReplicaSetsByCreationTimestamp: oldest first, then by name."""
    m = rs.get("metadata") or {}
    return parse_time(m.get("creationTimestamp")) or 0.0, m.get("name", "")


def by_revision(rs: Obj) -> tuple[int, float, str]:
    """ReplicaSetsByRevision: lowest revision first, ties by creation."""
    return (revision(rs), *by_creation(rs))


def find_new_rs(d: Obj, rss: list[Obj]) -> Obj | None:
    """The oldest ReplicaSet whose template is the Deployment's (ignoring the hash label)."""
    template = (d.get("spec") or {}).get("template")
    for rs in sorted(rss, key=by_creation):
        if equal_ignore_hash((rs.get("spec") or {}).get("template"), template):
            return rs
    return None


def find_old_rss(d: Obj, rss: list[Obj]) -> tuple[list[Obj], list[Obj]]:
    """(old ReplicaSets with replicas, every old ReplicaSet)."""
    new = find_new_rs(d, rss)
    new_uid = new["metadata"]["uid"] if new else None
    all_old = [rs for rs in rss if rs["metadata"].get("uid") != new_uid]
    return [rs for rs in all_old if replicas_of(rs) != 0], all_old


def active(rss: list[Obj | None]) -> list[Obj]:
    """controller.FilterActiveReplicaSets: those with replicas > 0."""
    return [rs for rs in rss if rs is not None and replicas_of(rs) > 0]


def find_active_or_latest(new_rs: Obj | None, old_rss: list[Obj]) -> Obj | None:
    """The only active ReplicaSet, or the newest when none is active; None when several are."""
    if new_rs is None and not old_rss:
        return None
    olds = sorted(old_rss, key=by_creation, reverse=True)
    live = active(olds + [new_rs])
    if not live:
        return new_rs if new_rs is not None else olds[0]
    return live[0] if len(live) == 1 else None
