"""The ReplicaSet controller (upstream pkg/controller/replicaset): keeps spec.replicas pods alive.

A sync claims the active pods (not terminal, not being deleted) that the ReplicaSet's selector
matches, creates the missing ones from its template (`<rs>-<5 chars>` by generateName, owned by it)
or deletes the surplus (earliest in their life first, see podrank), then writes the status:
replicas, fullyLabeledReplicas, readyReplicas, availableReplicas (ready for minReadySeconds),
observedGeneration, and a ReplicaFailure condition while creating or deleting fails.

Upstream's "expectations" (not acting twice on a stale informer cache) have no counterpart: every
sync reads the store itself.
"""

from __future__ import annotations

import copy
from typing import Any, Callable

from ..apierrors import ApiError
from .claims import claim
from .conditions import REPLICA_FAILURE, get_condition, remove_condition
from .events import NORMAL, WARNING, EventRecorder
from .objects import (Obj, is_deleting, is_pod_active, is_pod_available, is_pod_ready, new_controller_ref,
                      parse_time, ready_condition, replicas_of, rfc3339, split_key)
from .podrank import pods_to_delete
from .workqueue import WorkQueue

BURST_REPLICAS = 500
RS_KIND = ("ReplicaSet", "apps/v1")


class ReplicaSetController:
    def __init__(self, store: Any, queue: WorkQueue, recorder: EventRecorder, clock: Callable[[], float]) -> None:
        self.store = store
        self.queue = queue
        self.recorder = recorder
        self.clock = clock

    def sync(self, key: str) -> None:
        namespace, name = split_key(key)
        try:
            rs = self.store.get("replicasets", namespace, name)
        except ApiError as e:
            if e.code == 404:
                return
            raise
        pods, _ = self.store.list("pods", namespace)
        active = [p for p in pods if is_pod_active(p)]
        owned = claim(self.store, "pods", rs, "replicasets", active, RS_KIND)
        error: ApiError | None = None
        if not is_deleting(rs):
            try:
                self._manage(owned, rs)
            except ApiError as e:
                error = e
        now = self.clock()
        status = replica_set_status(rs, owned, error, now)
        self._write_status(rs, status)
        later = _next_available(rs, owned, now)
        if error is None and later is not None:
            self.queue.add_after(key, later)
        if error is not None:
            raise error

    def _manage(self, pods: list[Obj], rs: Obj) -> None:
        diff = len(pods) - replicas_of(rs)
        if diff < 0:
            for _ in range(min(-diff, BURST_REPLICAS)):
                self._create_pod(rs)
        elif diff > 0:
            for pod in pods_to_delete(pods, min(diff, BURST_REPLICAS), self.clock()):
                self._delete_pod(rs, pod)

    def _create_pod(self, rs: Obj) -> None:
        try:
            pod = self.store.create("pods", pod_from_template(rs))
        except ApiError as e:
            self.recorder.event(rs, WARNING, "FailedCreate", f"Error creating: {e.message}")
            raise
        self.recorder.event(rs, NORMAL, "SuccessfulCreate", f"Created pod: {pod['metadata']['name']}")

    def _delete_pod(self, rs: Obj, pod: Obj) -> None:
        name = pod["metadata"]["name"]
        try:
            self.store.delete("pods", pod["metadata"].get("namespace"), name)
        except ApiError as e:
            if e.code == 404:
                return
            self.recorder.event(rs, WARNING, "FailedDelete", f"Error deleting: {e.message}")
            raise
        self.recorder.event(rs, NORMAL, "SuccessfulDelete", f"Deleted pod: {name}")

    def _write_status(self, rs: Obj, status: Obj) -> None:
        """updateReplicaSetStatus: only when something changed, with the generation observed."""
        generation = rs["metadata"].get("generation", 0)
        old = rs.get("status") or {}
        if _counts(old) == _counts(status) and old.get("observedGeneration") == generation \
                and old.get("conditions") == status.get("conditions"):
            return
        status["observedGeneration"] = generation

        def write(obj: Obj) -> None:
            obj["status"] = _omit_zeros(status)
        try:
            self.store.mutate("replicasets", rs["metadata"].get("namespace"), rs["metadata"]["name"], write,
                              subresource="status")
        except ApiError as e:
            if e.code != 404:
                raise


def pod_from_template(rs: Obj) -> Obj:
    """controller.GetPodFromTemplate: the template's labels, annotations, finalizers and spec."""
    template = (rs.get("spec") or {}).get("template") or {}
    tmeta = template.get("metadata") or {}
    m: Obj = {"generateName": f"{rs['metadata']['name']}-", "namespace": rs["metadata"].get("namespace"),
              "labels": dict(tmeta.get("labels") or {}),
              "ownerReferences": [new_controller_ref(rs, *RS_KIND)]}
    if tmeta.get("annotations"):
        m["annotations"] = dict(tmeta["annotations"])
    if tmeta.get("finalizers"):
        m["finalizers"] = list(tmeta["finalizers"])
    return {"apiVersion": "v1", "kind": "Pod", "metadata": m, "spec": copy.deepcopy(template.get("spec") or {})}


def replica_set_status(rs: Obj, pods: list[Obj], error: ApiError | None, now: float) -> Obj:
    """calculateStatus: the counts over the owned active pods, and the ReplicaFailure condition."""
    status = copy.deepcopy(rs.get("status") or {})
    template_labels = (((rs.get("spec") or {}).get("template") or {}).get("metadata") or {}).get("labels") or {}
    min_ready = int((rs.get("spec") or {}).get("minReadySeconds") or 0)
    fully = ready = available = 0
    for pod in pods:
        labels = pod["metadata"].get("labels") or {}
        if all(labels.get(k) == v for k, v in template_labels.items()):
            fully += 1
        if is_pod_ready(pod):
            ready += 1
            if is_pod_available(pod, min_ready, now):
                available += 1
    failure = get_condition(status, REPLICA_FAILURE)
    if error is not None and failure is None:
        diff = len(pods) - replicas_of(rs)
        reason = "FailedCreate" if diff < 0 else ("FailedDelete" if diff > 0 else "")
        status.setdefault("conditions", []).append(
            {"type": REPLICA_FAILURE, "status": "True", "lastTransitionTime": rfc3339(now), "reason": reason,
             "message": error.message})
    elif error is None and failure is not None:
        remove_condition(status, REPLICA_FAILURE)
    status.update(replicas=len(pods), fullyLabeledReplicas=fully, readyReplicas=ready, availableReplicas=available)
    return status


def _counts(status: Obj) -> tuple[int, ...]:
    return tuple(int(status.get(k) or 0)
                 for k in ("replicas", "fullyLabeledReplicas", "readyReplicas", "availableReplicas"))


def _omit_zeros(status: Obj) -> Obj:
    """As the API serialises ReplicaSetStatus: `replicas` always, the other counts only when non-zero."""
    return {k: v for k, v in status.items() if k == "replicas" or v not in (0, None, [])}


def _next_available(rs: Obj, pods: list[Obj], now: float) -> float | None:
    """Seconds (by the clock) until a ready pod passes minReadySeconds, plus one, as upstream requeues."""
    min_ready = int((rs.get("spec") or {}).get("minReadySeconds") or 0)
    if not min_ready:
        return None
    waits = []
    for pod in pods:
        if is_pod_ready(pod) and not is_pod_available(pod, min_ready, now):
            since = parse_time((ready_condition(pod) or {}).get("lastTransitionTime")) or now
            waits.append(max(since + min_ready - now, 0.0) + 1)
    return min(waits) if waits else None
