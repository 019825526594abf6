"""The controller manager: the Deployment and ReplicaSet controllers and the garbage collector over
one store, each with its work queue and worker threads, fed by the store's change listener.

Keys are namespace/name. A pod's change queues its controlling ReplicaSet (an orphan pod, every
ReplicaSet of its namespace that selects it); a ReplicaSet's queues itself and its Deployment; a
pod's deletion queues the Deployment too (Recreate waits for old pods to be gone). A ticker
(real time) releases keys delayed by the injected clock - progress deadlines, and a ReplicaSet's
pods passing minReadySeconds (its sync asks for that) - and resyncs every Deployment and
ReplicaSet each `resync` seconds of that clock.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable

from ..apierrors import ApiError
from .deployment import DeploymentController
from .events import EventRecorder
from .garbage import GarbageCollector, gc_key
from .objects import Obj, controller_of, key_of, selector_matches
from .replicaset import ReplicaSetController
from .workqueue import WorkQueue

log = logging.getLogger(__name__)

DEPLOYMENT_MAX_RETRIES = 15  # upstream drops a Deployment key after 15 failed syncs (until its next change)


class Controllers:
    def __init__(self, store: Any, clock: Callable[[], float] = time.time, workers: int = 2,
                 tick: float = 0.1, resync: float = 30.0) -> None:
        self.store = store
        self.clock = clock
        self.workers = workers
        self.tick_seconds = tick
        self.resync_seconds = resync
        self.deployment_queue = WorkQueue(clock)
        self.replicaset_queue = WorkQueue(clock)
        self.garbage_queue = WorkQueue(clock)
        self.deployments = DeploymentController(store, self.deployment_queue,
                                                EventRecorder(store, "deployment-controller", clock), clock)
        self.replicasets = ReplicaSetController(store, self.replicaset_queue,
                                                EventRecorder(store, "replicaset-controller", clock), clock)
        self.garbage = GarbageCollector(store)
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()
        self._last_resync = clock()
        store.add_listener(self.on_change)

    # --- running ------------------------------------------------------------------------------------

    def start(self) -> "Controllers":
        self.resync()
        runs = [(self.deployment_queue, self.deployments.sync, DEPLOYMENT_MAX_RETRIES, "deployment"),
                (self.replicaset_queue, self.replicasets.sync, None, "replicaset"),
                (self.garbage_queue, self.garbage.sync, None, "garbage")]
        for queue, sync, retries, name in runs:
            for i in range(self.workers if name != "garbage" else 1):
                self._spawn(f"{name}-controller-{i}", self._work, queue, sync, retries)
        self._spawn("controllers-ticker", self._tick_loop)
        return self

    def stop(self) -> None:
        self._stop.set()
        for queue in (self.deployment_queue, self.replicaset_queue, self.garbage_queue):
            queue.shutdown()
        for thread in self._threads:
            thread.join(timeout=5)
        self._threads.clear()

    def _spawn(self, name: str, target: Callable[..., None], *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _work(self, queue: WorkQueue, sync: Callable[[str], None], max_retries: int | None) -> None:
        while True:
            key = queue.get()
            if key is None:
                return
            try:
                sync(key)
                queue.forget(key)
            except Exception as e:  # noqa: BLE001 - a failed sync is retried, never kills the worker
                if max_retries is not None and queue.retries(key) >= max_retries:
                    log.warning("dropping %s out of the queue after %d retries: %s", key, max_retries, e)
                    queue.forget(key)
                else:
                    level = logging.DEBUG if isinstance(e, ApiError) and e.code == 409 else logging.WARNING
                    log.log(level, "sync of %s failed (retrying): %s", key, e, exc_info=level == logging.WARNING
                            and not isinstance(e, ApiError))
                    queue.add_rate_limited(key)
            finally:
                queue.done(key)

    def _tick_loop(self) -> None:
        while not self._stop.wait(self.tick_seconds):
            self.tick()

    def tick(self) -> None:
        """Release delayed keys that are due; resync everything once per `resync` seconds of the clock."""
        for queue in (self.deployment_queue, self.replicaset_queue, self.garbage_queue):
            queue.tick()
        if self.clock() - self._last_resync >= self.resync_seconds:
            self.resync()

    def resync(self) -> None:
        self._last_resync = self.clock()
        for plural, queue in (("deployments", self.deployment_queue), ("replicasets", self.replicaset_queue)):
            items, _ = self.store.list(plural)
            for obj in items:
                queue.add(key_of(obj))

    def idle(self) -> bool:
        """No key queued, in a sync or backing off (keys waiting on the clock do not count)."""
        return all(q.idle() for q in (self.deployment_queue, self.replicaset_queue, self.garbage_queue))

    # --- the store's listener -----------------------------------------------------------------------

    def on_change(self, event: str, plural: str, obj: Obj) -> None:
        try:
            self._route(event, plural, obj)
        except Exception:  # noqa: BLE001 - a listener must never fail the writer's request
            log.exception("controllers could not route %s %s %s", event, plural, key_of(obj))

    def _route(self, event: str, plural: str, obj: Obj) -> None:
        if event == "ADDED":
            key = gc_key(plural, obj)
            if key is not None:
                self.garbage_queue.add(key)
        if plural == "deployments":
            self.deployment_queue.add(key_of(obj))
        elif plural == "replicasets":
            self.replicaset_queue.add(key_of(obj))
            self._queue_owner(obj, "Deployment", self.deployment_queue, "deployments")
        elif plural == "pods":
            self._pod_changed(event, obj)

    def _pod_changed(self, event: str, pod: Obj) -> None:
        ref = controller_of(pod)
        namespace = pod["metadata"].get("namespace")
        if ref is None:
            if event != "DELETED":
                self._queue_selecting(pod, "replicasets", self.replicaset_queue)
            return
        if ref.get("kind") != "ReplicaSet":
            return
        rs_key = f"{namespace}/{ref['name']}"
        self.replicaset_queue.add(rs_key)
        if event == "DELETED":
            try:
                rs = self.store.get("replicasets", namespace, ref["name"])
            except ApiError:
                return
            self._queue_owner(rs, "Deployment", self.deployment_queue, "deployments")

    def _queue_owner(self, obj: Obj, kind: str, queue: WorkQueue, plural: str) -> None:
        ref = controller_of(obj)
        if ref is not None:
            if ref.get("kind") == kind:
                queue.add(f"{obj['metadata'].get('namespace')}/{ref['name']}")
        else:
            self._queue_selecting(obj, plural, queue)

    def _queue_selecting(self, obj: Obj, plural: str, queue: WorkQueue) -> None:
        """An orphan: whoever selects it may adopt it."""
        labels = obj["metadata"].get("labels") or {}
        owners, _ = self.store.list(plural, obj["metadata"].get("namespace"))
        for owner in owners:
            if selector_matches((owner.get("spec") or {}).get("selector"), labels):
                queue.add(key_of(owner))
