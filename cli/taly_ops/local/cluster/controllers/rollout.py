"""How a Deployment moves between ReplicaSets: rolling update, Recreate, and scaling (upstream
rolling.go, recreate.go and sync.go's scale).

Rolling: grow the new ReplicaSet while the total stays within replicas + maxSurge; shrink old ones
while the available pods stay at least replicas - maxUnavailable (unhealthy old pods first). With
the chart's 1/0 the new ReplicaSet grows by one, and an old pod goes only once a new one is available.
Scaling (a changed replica count, or a paused Deployment) spreads the difference over the active
ReplicaSets in proportion to their size, as upstream.
"""

from __future__ import annotations

from typing import Protocol

from .conditions import deployment_complete
from .deployutil import (active, actual_replicas, available_replicas, by_creation, find_active_or_latest, is_paused,
                         is_rolling_update, is_saturated, max_surge, max_unavailable, new_rs_new_replicas,
                         proportion, replicas_of, spec_replicas)
from .objects import Obj


class DeploymentController(Protocol):
    """What the strategies ask of the controller (deployment.DeploymentController): reads and writes."""

    def get_all_rss(self, d: Obj, rss: list[Obj], create: bool) -> tuple[Obj | None, list[Obj], Obj]: ...

    def scale_rs(self, rs: Obj, new_scale: int, d: Obj, operation: str | None = None) -> tuple[bool, Obj]: ...

    def sync_rollout_status(self, all_rss: list[Obj | None], new_rs: Obj | None, d: Obj) -> None: ...

    def sync_deployment_status(self, all_rss: list[Obj | None], new_rs: Obj | None, d: Obj) -> None: ...

    def cleanup(self, old_rss: list[Obj], d: Obj) -> None: ...


# --- rolling update ---------------------------------------------------------------------------------

def rolling(c: DeploymentController, d: Obj, rss: list[Obj]) -> None:
    new_rs, old_rss, d = c.get_all_rss(d, rss, create=True)
    all_rss = old_rss + [new_rs]
    if _reconcile_new(c, all_rss, new_rs, d):
        c.sync_rollout_status(all_rss, new_rs, d)
        return
    if _reconcile_old(c, all_rss, active(old_rss), new_rs, d):
        c.sync_rollout_status(all_rss, new_rs, d)
        return
    if deployment_complete(d, d.get("status") or {}):
        c.cleanup(old_rss, d)
    c.sync_rollout_status(all_rss, new_rs, d)


def _reconcile_new(c: DeploymentController, all_rss: list[Obj], new_rs: Obj, d: Obj) -> bool:
    desired, current = replicas_of(d), replicas_of(new_rs)
    if current == desired:
        return False
    if current > desired:
        return c.scale_rs(new_rs, desired, d)[0]
    return c.scale_rs(new_rs, new_rs_new_replicas(d, all_rss, new_rs), d)[0]


def _available(rs: Obj | None) -> int:
    return int(((rs or {}).get("status") or {}).get("availableReplicas") or 0)


def _reconcile_old(c: DeploymentController, all_rss: list[Obj], old_rss: list[Obj], new_rs: Obj, d: Obj) -> bool:
    """Scale old ReplicaSets down as far as availability allows, counting the new one's unavailable
    pods against it (so a crash-looping new ReplicaSet never drains the old one)."""
    if spec_replicas(old_rss) == 0:
        return False
    min_available = replicas_of(d) - max_unavailable(d)
    new_unavailable = replicas_of(new_rs) - _available(new_rs)
    max_scaled_down = spec_replicas(all_rss) - min_available - new_unavailable
    if max_scaled_down <= 0:
        return False
    old_rss, cleaned = _cleanup_unhealthy(c, old_rss, d, max_scaled_down)
    scaled = _scale_down_old(c, old_rss + [new_rs], old_rss, d)
    return cleaned + scaled > 0


def _cleanup_unhealthy(c: DeploymentController, old_rss: list[Obj], d: Obj, budget: int) -> tuple[list[Obj], int]:
    """Old ReplicaSets' unavailable pods go first: removing them costs no availability."""
    old_rss = sorted(old_rss, key=by_creation)
    total = 0
    for i, rs in enumerate(old_rss):
        if total >= budget:
            break
        replicas = replicas_of(rs)
        if replicas == 0 or replicas == _available(rs):
            continue
        count = min(budget - total, replicas - _available(rs))
        _, old_rss[i] = c.scale_rs(rs, replicas - count, d)
        total += count
    return old_rss, total


def _scale_down_old(c: DeploymentController, all_rss: list[Obj], old_rss: list[Obj], d: Obj) -> int:
    min_available = replicas_of(d) - max_unavailable(d)
    available = available_replicas(all_rss)
    if available <= min_available:
        return 0
    budget = available - min_available
    total = 0
    for rs in sorted(old_rss, key=by_creation):
        if total >= budget:
            break
        replicas = replicas_of(rs)
        if replicas == 0:
            continue
        count = min(replicas, budget - total)
        c.scale_rs(rs, replicas - count, d)
        total += count
    return total


# --- Recreate ---------------------------------------------------------------------------------------

def recreate(c: DeploymentController, d: Obj, rss: list[Obj], pods_by_rs: dict[str, list[Obj]]) -> None:
    """Every old pod gone before the new ReplicaSet is created at full size."""
    new_rs, old_rss, d = c.get_all_rss(d, rss, create=False)
    all_rss = old_rss + [new_rs]
    scaled = False
    for rs in active(old_rss):
        scaled = c.scale_rs(rs, 0, d)[0] or scaled
    if scaled or _old_pods_running(new_rs, old_rss, pods_by_rs):
        c.sync_rollout_status(all_rss, new_rs, d)
        return
    if new_rs is None:
        new_rs, old_rss, d = c.get_all_rss(d, rss, create=True)
        all_rss = old_rss + [new_rs]
    c.scale_rs(new_rs, replicas_of(d), d)
    if deployment_complete(d, d.get("status") or {}):
        c.cleanup(old_rss, d)
    c.sync_rollout_status(all_rss, new_rs, d)


def _old_pods_running(new_rs: Obj | None, old_rss: list[Obj], pods_by_rs: dict[str, list[Obj]]) -> bool:
    if actual_replicas(old_rss) > 0:
        return True
    new_uid = new_rs["metadata"]["uid"] if new_rs is not None else None
    return any((p.get("status") or {}).get("phase") not in ("Failed", "Succeeded")
               for uid, pods in pods_by_rs.items() if uid != new_uid for p in pods)


# --- scaling ----------------------------------------------------------------------------------------

def sync_scale(c: DeploymentController, d: Obj, rss: list[Obj]) -> None:
    """sync(): a scaling event or a paused Deployment: resize, clean up (paused), status without progress."""
    new_rs, old_rss, d = c.get_all_rss(d, rss, create=False)
    scale(c, d, new_rs, old_rss)
    if is_paused(d):
        c.cleanup(old_rss, d)
    c.sync_deployment_status(old_rss + [new_rs], new_rs, d)


def scale(c: DeploymentController, d: Obj, new_rs: Obj | None, old_rss: list[Obj]) -> None:
    only = find_active_or_latest(new_rs, old_rss)
    if only is not None:
        if replicas_of(only) != replicas_of(d):
            c.scale_rs(only, replicas_of(d), d)
        return
    if is_saturated(d, new_rs):
        for rs in active(old_rss):
            c.scale_rs(rs, 0, d)
        return
    if is_rolling_update(d):
        _scale_proportionally(c, d, active(old_rss + [new_rs]))


def _scale_proportionally(c: DeploymentController, d: Obj, rss: list[Obj]) -> None:
    """Spread (replicas + maxSurge) - current over the active ReplicaSets by their size: larger first,
    newer first on ties when growing, older first when shrinking; leftovers to the first."""
    allowed = replicas_of(d) + max_surge(d) if replicas_of(d) > 0 else 0
    to_add = allowed - spec_replicas(rss)
    operation = ""
    if to_add > 0:  # ReplicaSetsBySizeNewer
        rss = sorted(sorted(rss, key=by_creation, reverse=True), key=lambda rs: -replicas_of(rs))
        operation = "up"
    elif to_add < 0:  # ReplicaSetsBySizeOlder
        rss = sorted(sorted(rss, key=by_creation), key=lambda rs: -replicas_of(rs))
        operation = "down"
    added = 0
    sizes: dict[str, int] = {}
    for rs in rss:
        share = proportion(rs, d, to_add, added) if to_add else 0
        sizes[rs["metadata"]["name"]] = replicas_of(rs) + share
        added += share
    for i, rs in enumerate(rss):
        name = rs["metadata"]["name"]
        if i == 0 and to_add != 0:
            sizes[name] = max(sizes[name] + to_add - added, 0)
        c.scale_rs(rs, sizes[name], d, operation)

