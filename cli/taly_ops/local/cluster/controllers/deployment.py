"""The Deployment controller (upstream pkg/controller/deployment): ReplicaSets per pod template.

A sync claims the Deployment's ReplicaSets, then: records Paused/Resumed on the Progressing
condition; if paused or only scaled, resizes (rollout.scale) without rolling; else rolls out by its
strategy (rollout.rolling / rollout.recreate). The new ReplicaSet is `<deployment>-<hash>` with
the hash label on its selector, template and pods, owned by the Deployment; its revision is one
past the old ones' (a template rolled back to keeps its ReplicaSet and takes the next revision),
and the Deployment's revision annotation follows it.

Writes of a ReplicaSet's spec carry the resourceVersion read (a stale decision fails with 409 and
the key is retried, as upstream's Update); status writes go through the status subresource.
"""

from __future__ import annotations

import copy
from typing import Any, Callable

from ..apierrors import ApiError
from .conditions import (FOUND_NEW_RS, NEW_RS_CREATED, PAUSED, PROGRESSING, RESUMED, RS_CREATE_ERROR, TIMED_OUT,
                         calculate_status, get_condition, new_condition, requeue_after, rollout_status, set_condition)
from .deployutil import (DESIRED_REPLICAS, REVISION, active, annotations, by_revision, find_new_rs, find_old_rss,
                         int_annotation, is_paused, max_revision, max_surge, min_ready_seconds, new_rs_new_replicas,
                         progress_deadline, replicas_annotations_need_update, replicas_of, revision_history_limit,
                         set_new_rs_annotations, set_replicas_annotations, strategy_type)
from .claims import claim
from .events import NORMAL, WARNING, EventRecorder
from .objects import Obj, is_deleting, key_of, new_controller_ref, selector_is_empty, split_key
from .rollout import recreate, rolling, sync_scale
from .templates import HASH_LABEL, compute_hash, equal_ignore_hash
from .workqueue import WorkQueue

DEPLOYMENT_KIND = ("Deployment", "apps/v1")


class DeploymentController:
    def __init__(self, store: Any, queue: WorkQueue, recorder: EventRecorder, clock: Callable[[], float]) -> None:
        self.store = store
        self.queue = queue
        self.recorder = recorder
        self.clock = clock

    # --- the sync -----------------------------------------------------------------------------------

    def sync(self, key: str) -> None:
        namespace, name = split_key(key)
        try:
            d = self.store.get("deployments", namespace, name)
        except ApiError as e:
            if e.code == 404:
                return
            raise
        if selector_is_empty((d.get("spec") or {}).get("selector")):
            self.recorder.event(d, WARNING, "SelectingAll",
                                "This deployment is selecting all pods. A non-empty selector is required.")
            if (d.get("status") or {}).get("observedGeneration", 0) < d["metadata"].get("generation", 0):
                self.write_status(d, {**(d.get("status") or {}), "observedGeneration": d["metadata"]["generation"]})
            return
        rss = self.replica_sets_for(d)
        if is_deleting(d):
            new_rs, old_rss, d = self.get_all_rss(d, rss, create=False)
            self.sync_deployment_status(old_rss + [new_rs], new_rs, d)
            return
        d = self.check_paused_conditions(d)
        if is_paused(d):
            sync_scale(self, d, rss)
            return
        scaling, d = self.is_scaling_event(d, rss)
        if scaling:
            sync_scale(self, d, rss)
        elif strategy_type(d) == "Recreate":
            recreate(self, d, rss, self.pods_by_rs(d, rss))
        elif strategy_type(d) == "RollingUpdate":
            rolling(self, d, rss)
        else:
            raise ValueError(f"unexpected deployment strategy type: {strategy_type(d)}")

    def replica_sets_for(self, d: Obj) -> list[Obj]:
        """getReplicaSetsForDeployment: the namespace's ReplicaSets it controls, adopting orphans."""
        rss, _ = self.store.list("replicasets", d["metadata"].get("namespace"))
        return claim(self.store, "replicasets", d, "deployments", rss, DEPLOYMENT_KIND)

    def pods_by_rs(self, d: Obj, rss: list[Obj]) -> dict[str, list[Obj]]:
        """getPodMapForDeployment: the pods each of its ReplicaSets controls, by ReplicaSet uid."""
        by_uid: dict[str, list[Obj]] = {rs["metadata"]["uid"]: [] for rs in rss}
        pods, _ = self.store.list("pods", d["metadata"].get("namespace"))
        for pod in pods:
            for ref in pod["metadata"].get("ownerReferences") or []:
                if ref.get("controller") and ref.get("uid") in by_uid:
                    by_uid[ref["uid"]].append(pod)
        return by_uid

    def is_scaling_event(self, d: Obj, rss: list[Obj]) -> tuple[bool, Obj]:
        """An active ReplicaSet was sized for another replica count than the Deployment's now (and the
        Deployment as last written: finding the new ReplicaSet may have synced its revision)."""
        new_rs, old_rss, d = self.get_all_rss(d, rss, create=False)
        for rs in active(old_rss + [new_rs]):
            desired = int_annotation(rs, DESIRED_REPLICAS)
            if desired is not None and desired != replicas_of(d):
                return True, d
        return False, d

    def check_paused_conditions(self, d: Obj) -> Obj:
        """Progressing Unknown (DeploymentPaused / DeploymentResumed): a pause never counts as no progress."""
        if progress_deadline(d) is None:
            return d
        current = get_condition(d.get("status"), PROGRESSING)
        if current is not None and current.get("reason") == TIMED_OUT:
            return d
        paused_recorded = current is not None and current.get("reason") == PAUSED
        if is_paused(d) and not paused_recorded:
            reason, message = PAUSED, "Deployment is paused"
        elif not is_paused(d) and paused_recorded:
            reason, message = RESUMED, "Deployment is resumed"
        else:
            return d
        status = copy.deepcopy(d.get("status") or {})
        set_condition(status, new_condition(PROGRESSING, "Unknown", reason, message, self.clock()))
        return self.write_status(d, status)

    # --- the new ReplicaSet -------------------------------------------------------------------------

    def get_all_rss(self, d: Obj, rss: list[Obj], create: bool) -> tuple[Obj | None, list[Obj], Obj]:
        """(new ReplicaSet or None, every old one, the Deployment as last written), revisions synced."""
        _, all_old = find_old_rss(d, rss)
        new_rs, d = self.get_new_rs(d, rss, all_old, create)
        return new_rs, all_old, d

    def get_new_rs(self, d: Obj, rss: list[Obj], old_rss: list[Obj], create: bool) -> tuple[Obj | None, Obj]:
        existing = find_new_rs(d, rss)
        new_revision = max_revision(old_rss) + 1
        if existing is not None:
            rs, d = self._sync_existing_new_rs(d, existing, new_revision)
            rss[rss.index(existing)] = rs  # this sync's later steps see what was written
            return rs, d
        if not create:
            return None, d
        return self._create_new_rs(d, old_rss, new_revision)

    def _sync_existing_new_rs(self, d: Obj, existing: Obj, new_revision: int) -> tuple[Obj, Obj]:
        rs = copy.deepcopy(existing)
        changed = set_new_rs_annotations(d, rs, new_revision, exists=True)
        if changed or min_ready_seconds(rs) != min_ready_seconds(d):
            rs.setdefault("spec", {})["minReadySeconds"] = min_ready_seconds(d)
            return self.store.update("replicasets", rs), d
        status = copy.deepcopy(d.get("status") or {})
        revision = rs["metadata"].get("annotations", {}).get(REVISION)
        needs_write = revision is not None and annotations(d).get(REVISION) != revision
        if progress_deadline(d) is not None and get_condition(status, PROGRESSING) is None:
            set_condition(status, new_condition(
                PROGRESSING, "True", FOUND_NEW_RS, f'Found new replica set "{rs["metadata"]["name"]}"',
                self.clock()))
            needs_write = True
        if needs_write:
            d = self.write_status(d, status, revision=revision)
        return rs, d

    def _create_new_rs(self, d: Obj, old_rss: list[Obj], new_revision: int) -> tuple[Obj, Obj]:
        rs = self.new_rs_object(d)
        rs["spec"]["replicas"] = new_rs_new_replicas(d, old_rss + [rs], rs)
        set_new_rs_annotations(d, rs, new_revision, exists=False)
        name = rs["metadata"]["name"]
        already = False
        try:
            created = self.store.create("replicasets", rs)
        except ApiError as e:
            if e.reason == "AlreadyExists":
                created = self._existing_or_collision(d, name, e)
                already = True
            else:
                message = f'Failed to create new replica set "{name}": {e.message}'
                if progress_deadline(d) is not None:
                    status = copy.deepcopy(d.get("status") or {})
                    set_condition(status, new_condition(PROGRESSING, "False", RS_CREATE_ERROR,
                                                                  message, self.clock()))
                    self.write_status(d, status)
                self.recorder.event(d, WARNING, RS_CREATE_ERROR, message)
                raise
        replicas = replicas_of(created)
        if not already and replicas > 0:
            self.recorder.event(d, NORMAL, "ScalingReplicaSet", f"Scaled up replica set {name} from 0 to {replicas}")
        status = copy.deepcopy(d.get("status") or {})
        if not already and progress_deadline(d) is not None:
            set_condition(status, new_condition(
                PROGRESSING, "True", NEW_RS_CREATED, f'Created new replica set "{name}"', self.clock()))
        revision = str(new_revision)
        if status != (d.get("status") or {}) or annotations(d).get(REVISION) != revision:
            d = self.write_status(d, status, revision=revision)
        return created, d

    def new_rs_object(self, d: Obj) -> Obj:
        """The new ReplicaSet: `<deployment>-<hash>`, the hash label on its labels, selector and template."""
        spec = d.get("spec") or {}
        template = copy.deepcopy(spec.get("template") or {})
        pod_hash = compute_hash(spec.get("template") or {}, (d.get("status") or {}).get("collisionCount"))
        template.setdefault("metadata", {})
        template["metadata"]["labels"] = {**(template["metadata"].get("labels") or {}), HASH_LABEL: pod_hash}
        selector = copy.deepcopy(spec.get("selector") or {})
        selector["matchLabels"] = {**(selector.get("matchLabels") or {}), HASH_LABEL: pod_hash}
        rs_spec: Obj = {"replicas": 0, "selector": selector, "template": template}
        if min_ready_seconds(d):
            rs_spec["minReadySeconds"] = min_ready_seconds(d)
        return {"apiVersion": "apps/v1", "kind": "ReplicaSet",
                "metadata": {"name": f"{d['metadata']['name']}-{pod_hash}", "namespace": d["metadata"].get("namespace"),
                             "labels": dict(template["metadata"]["labels"]),
                             "ownerReferences": [new_controller_ref(d, *DEPLOYMENT_KIND)]},
                "spec": rs_spec}

    def _existing_or_collision(self, d: Obj, name: str, error: ApiError) -> Obj:
        """The name is taken: ours with this template (a stale cache upstream), or a hash collision:
        collisionCount + 1 so the next sync hashes to another name, and this one fails."""
        try:
            rs = self.store.get("replicasets", d["metadata"].get("namespace"), name)
        except ApiError:
            raise error from None
        ref = next((r for r in rs["metadata"].get("ownerReferences") or [] if r.get("controller")), None)
        if ref is not None and ref.get("uid") == d["metadata"]["uid"] and equal_ignore_hash(
                (d.get("spec") or {}).get("template"), (rs.get("spec") or {}).get("template")):
            return rs
        status = copy.deepcopy(d.get("status") or {})
        status["collisionCount"] = int(status.get("collisionCount") or 0) + 1
        self.write_status(d, status)
        raise error

    # --- writes -------------------------------------------------------------------------------------

    def scale_rs(self, rs: Obj, new_scale: int, d: Obj, operation: str | None = None) -> tuple[bool, Obj]:
        """scaleReplicaSet(AndRecordEvent): resize and re-annotate; (whether the size changed, the RS)."""
        old_scale = replicas_of(rs)
        if operation is None:
            if old_scale == new_scale:
                return False, rs
            operation = "up" if old_scale < new_scale else "down"
        desired = replicas_of(d)
        max_replicas = desired + max_surge(d)
        if old_scale == new_scale and not replicas_annotations_need_update(rs, desired, max_replicas):
            return False, rs
        updated = copy.deepcopy(rs)
        updated.setdefault("spec", {})["replicas"] = new_scale
        set_replicas_annotations(updated, desired, max_replicas)
        updated = self.store.update("replicasets", updated)
        if old_scale != new_scale:
            name = rs["metadata"]["name"]
            self.recorder.event(d, NORMAL, "ScalingReplicaSet",
                                f"Scaled {operation} replica set {name} from {old_scale} to {new_scale}")
            return True, updated
        return False, updated

    def write_status(self, d: Obj, status: Obj, revision: str | None = None) -> Obj:
        """UpdateStatus: the status (zero counts omitted, as the API serialises them) and, as the
        status subresource of Deployments allows, the revision annotation."""
        body = _omit_zeros(status)

        def write(obj: Obj) -> None:
            obj["status"] = body
            if revision is not None:
                obj["metadata"].setdefault("annotations", {})[REVISION] = revision
        return self.store.mutate("deployments", d["metadata"].get("namespace"), d["metadata"]["name"], write,
                                 subresource="status")

    def sync_deployment_status(self, all_rss: list[Obj | None], new_rs: Obj | None, d: Obj) -> None:
        status = calculate_status(all_rss, new_rs, d, self.clock())
        if _omit_zeros(status) != _omit_zeros(d.get("status") or {}):
            self.write_status(d, status)

    def sync_rollout_status(self, all_rss: list[Obj | None], new_rs: Obj | None, d: Obj) -> None:
        now = self.clock()
        status = rollout_status(all_rss, new_rs, d, now)
        if _omit_zeros(status) != _omit_zeros(d.get("status") or {}):
            self.write_status(d, status)
            return
        after = requeue_after(d, status, now)
        if after is not None:
            self.queue.add_after(key_of(d), after) if after > 0 else self.queue.add_rate_limited(key_of(d))

    def cleanup(self, old_rss: list[Obj], d: Obj) -> None:
        """cleanupDeployment: delete the oldest revisions past revisionHistoryLimit, if scaled to nothing."""
        limit = revision_history_limit(d)
        if limit is None:
            return
        cleanable = [rs for rs in old_rss if rs is not None and not is_deleting(rs)]
        excess = len(cleanable) - limit
        if excess <= 0:
            return
        for rs in sorted(cleanable, key=by_revision)[:excess]:
            status = rs.get("status") or {}
            if status.get("replicas") or replicas_of(rs) != 0 \
                    or rs["metadata"].get("generation", 0) > status.get("observedGeneration", 0):
                continue
            try:
                self.store.delete("replicasets", rs["metadata"].get("namespace"), rs["metadata"]["name"])
            except ApiError as e:
                if e.code != 404:
                    raise


def _omit_zeros(status: Obj) -> Obj:
    """DeploymentStatus as serialised: every count omitempty; collisionCount kept once set (a pointer)."""
    return {k: v for k, v in status.items() if k == "collisionCount" or v not in (0, None, [])}
