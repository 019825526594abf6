"""The kubelet: every pod in the store runs here, each container a real process of the stand-in.

There are no nodes and no scheduling: a pod is run as soon as it appears. Each pod gets its own
loopback IP (status.podIP) and its containers listen there on their containerPort, as Prometheus'
pod discovery expects. For each container the kubelet pulls (looks the reference up in the local
image registry), resolves its environment, starts it, probes it as its spec says, and restarts it
with the kubelet's back-off when it exits; it writes the pod's status (container states, conditions,
phase) as the kubelet does, and on graceful deletion stops the processes (SIGTERM, SIGKILL after the
grace period) before removing the pod. A pod's process that dies or misbehaves only changes that
pod's status.

Threads: one watching pods, one syncing them (a work queue of namespace/name keys), one for timers
(probe schedule, back-off expiry, kill deadlines), one seeing process exits, and a few running probes.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from pathlib import Path
from typing import Any, Callable

from . import podstatus
from .apierrors import ApiError
from .containers import ExitWatcher, Launcher, Timers, spawn_standin
from .images import ImageRegistry
from .ipam import IPAllocator
from .lifecycle import (DEFAULT_GRACE, HOST_IP, RETRY_SOON, ContainerRun, Events, Key, Lifecycle, PodRun, log_path,
                        signal_process)
from .probes import Prober, ProbeState

log = logging.getLogger("taly.cluster.kubelet")

Obj = dict[str, Any]
Recorder = Callable[[Obj, str, str, str], None]         # (pod, type Normal|Warning, reason, message)
__all__ = ["Kubelet", "log_path"]


class Kubelet:
    def __init__(self, store: Any, registry: ImageRegistry, directory: Path | str, *,
                 clock: Callable[[], float] = time.time, backoff_base: float = 10.0,
                 launcher: Launcher = spawn_standin, recorder: Recorder | None = None,
                 ips: IPAllocator | None = None) -> None:
        self.store, self.dir, self.clock = store, Path(directory), clock
        if recorder is None:   # as the kubelet does: its events on the pods, for `kubectl describe` and `get events`
            from .controllers.events import EventRecorder

            recorder = EventRecorder(store, "kubelet", clock).event
        self.recorder = recorder
        self.ips = ips or IPAllocator()
        self._lock = threading.RLock()
        self._pods: dict[Key, PodRun] = {}
        self._queue: list[Key] = []
        self._queued: set[Key] = set()
        self._cond = threading.Condition()
        self._stopped = threading.Event()
        self._threads: list[threading.Thread] = []
        self.timers = Timers()
        self.exits = ExitWatcher()
        self.prober = Prober(self.timers, self._probe_result)
        self.life = Lifecycle(registry, self.dir, clock, launcher, self.timers, self.exits, self.prober, self,
                              backoff_base)

    # --- running -----------------------------------------------------------------------------------------------

    def start(self) -> "Kubelet":
        for target, name in ((self._watch, "kubelet-watch"), (self._work, "kubelet-sync")):
            t = threading.Thread(target=target, name=name, daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def stop(self, grace: float = 5.0) -> None:
        """Stop syncing, then every container: SIGTERM, SIGKILL after `grace` seconds. Pods stay in the store."""
        self._stopped.set()
        with self._cond:
            self._cond.notify_all()
        with self._lock:
            procs = [c.proc for p in self._pods.values() for c in p.containers.values() if c.proc is not None]
        self.prober.shutdown()
        for proc in procs:
            signal_process(proc, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for proc in procs:
            try:
                proc.wait(max(0.0, deadline - time.monotonic()))
            except Exception:  # noqa: BLE001 - TimeoutExpired: it gets SIGKILL
                signal_process(proc, signal.SIGKILL)
                proc.wait()
        self.timers.stop()
        self.exits.stop()
        for t in self._threads:
            t.join(timeout=5)

    def enqueue(self, key: Key) -> None:
        with self._cond:
            if key not in self._queued:
                self._queued.add(key)
                self._queue.append(key)
                self._cond.notify()

    def later(self, key: Key, delay: float) -> None:
        self.timers.after(delay, lambda: self.enqueue(key))

    def _watch(self) -> None:
        while not self._stopped.is_set():
            try:
                watch = self.store.watch("pods")
                with self._lock:
                    known = list(self._pods)
                for key in known:   # a pod deleted while we were not watching is found gone by its sync
                    self.enqueue(key)
                while not self._stopped.is_set():
                    event = watch.next_event(timeout=1.0)
                    if event is None:
                        continue
                    if event[0] == "ERROR":
                        break
                    meta = event[1].get("metadata") or {}
                    self.enqueue((meta.get("namespace") or "", meta.get("name") or ""))
                watch.close()
            except Exception:  # noqa: BLE001 - a watch that failed is opened again
                log.exception("watching pods failed; watching again")
                self._stopped.wait(1.0)

    def _work(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._stopped.is_set():
                    self._cond.wait()
                if self._stopped.is_set():
                    return
                key = self._queue.pop(0)
                self._queued.discard(key)
            try:
                self.sync(key)
            except Exception:  # noqa: BLE001 - one pod's failure must not stop the others
                log.exception("syncing pod %s/%s failed; retrying", *key)
                self.later(key, RETRY_SOON)

    # --- one pod ------------------------------------------------------------------------------------------------

    def sync(self, key: Key) -> None:
        """Bring pod `key` to what its spec and deletion say, and write its status."""
        pod = self.lookup("pods", *key)
        events: Events = []
        with self._lock:
            run = self._pods.get(key)
            if run is not None and (pod is None or pod["metadata"]["uid"] != run.uid):
                self._forget(run, kill=True)   # gone from the store, or replaced under the same name
                run = None
            if pod is None:
                return
            if run is None:
                run = self._admit(pod)
            if pod["metadata"].get("deletionTimestamp"):
                finished = self._terminate(run, pod, events)
            else:
                finished = False
                for spec in pod["spec"]["containers"]:
                    self.life.step(run, pod, run.containers[spec["name"]], spec, events)
            status = podstatus.pod_status(pod, [c.view for c in run.containers.values()], run.ip, HOST_IP,
                                          run.start_time, self.clock())
        self._emit(pod, events)
        if finished:
            try:
                self.store.delete("pods", *key, grace_seconds=0)
            except ApiError as exc:
                if exc.code != 404:
                    raise
            with self._lock:
                self._forget(run, kill=False)
        elif status != pod.get("status"):
            self._write_status(key, run.uid, status)

    def lookup(self, plural: str, namespace: str, name: str) -> Obj | None:
        try:
            return self.store.get(plural, namespace, name)
        except ApiError as exc:
            if exc.code == 404:
                return None
            raise

    def _admit(self, pod: Obj) -> PodRun:
        meta, spec = pod["metadata"], pod["spec"]
        ports = [int(p["containerPort"]) for c in spec["containers"] for p in c.get("ports") or []]
        containers = {c["name"]: ContainerRun(c, podstatus.Container(c["name"], c.get("image", "")))
                      for c in spec["containers"]}
        run = PodRun(meta["uid"], (meta.get("namespace") or "", meta["name"]), self.ips.allocate(ports),
                     self.clock(), containers, spec.get("restartPolicy") or "Always",
                     float(spec.get("terminationGracePeriodSeconds", DEFAULT_GRACE)))
        self._pods[run.key] = run
        return run

    def _forget(self, run: PodRun, kill: bool) -> None:
        """Drop a pod (its IP, probes, logs); with kill, stop its processes too (SIGKILL 2 s after SIGTERM)."""
        if kill:
            for c in run.containers.values():
                self.life.kill(c, 2.0)
        self.life.forget(run)
        self.ips.release(run.ip)
        if self._pods.get(run.key) is run:
            del self._pods[run.key]

    def _terminate(self, run: PodRun, pod: Obj, events: Events) -> bool:
        """Graceful deletion: SIGTERM, SIGKILL at the deadline; True once every process has exited."""
        now = self.clock()
        grace = pod["metadata"].get("deletionGracePeriodSeconds")
        grace = run.grace if grace is None else float(grace)
        if run.deleting_since is None:
            run.deleting_since = now
            for c in run.containers.values():
                self.life.unprobe(run, c)
                c.view.ready = False
                if c.proc is not None:
                    events.append(("Normal", "Killing", f"Stopping container {c.view.name}"))
                    signal_process(c.proc, signal.SIGTERM)
        deadline = run.deleting_since + grace
        if run.kill_at is None or deadline < run.kill_at:
            run.kill_at = deadline
            self.later(run.key, max(0.0, deadline - now))
        if now >= run.kill_at and not run.killed:
            run.killed = True
            for c in run.containers.values():
                if c.proc is not None:
                    signal_process(c.proc, signal.SIGKILL)
        return all(c.proc is None for c in run.containers.values())

    # --- callbacks from the exit watcher and the prober ---------------------------------------------------------------

    def _container(self, key: Key, uid: str, name: str, cid: str) -> tuple[PodRun, ContainerRun] | None:
        run = self._pods.get(key)
        c = run.containers.get(name) if run is not None and run.uid == uid else None
        return (run, c) if c is not None and c.view.container_id == cid and c.proc is not None else None

    def exited(self, key: Key, uid: str, name: str, cid: str, code: int) -> None:
        with self._lock:
            found = self._container(key, uid, name, cid)
            if found is None:
                return
            self.life.exited(*found, code)
        self.enqueue(key)

    def _probe_result(self, pkey: tuple, state: ProbeState, ok: bool, changed: bool, message: str) -> None:
        key, uid, name, cid, kind = pkey
        events: Events = []
        with self._lock:
            found = self._container(key, uid, name, cid)
            if found is None or found[0].deleting_since is not None:
                return
            if not ok:
                events.append(("Warning", "Unhealthy", f"{kind.capitalize()} probe failed: {message}"))
            if changed:
                self.life.probed(*found, kind, state, events)
        if events:
            pod = self.lookup("pods", *key)
            if pod is not None:
                self._emit(pod, events)
        if changed:
            self.enqueue(key)

    # --- writing ------------------------------------------------------------------------------------------------------

    def _write_status(self, key: Key, uid: str, status: Obj) -> None:
        class Replaced(Exception):
            pass

        def put(obj: Obj) -> None:
            if obj["metadata"].get("uid") != uid:
                raise Replaced
            obj["status"] = status

        try:
            self.store.mutate("pods", *key, put, subresource="status")
        except Replaced:
            self.enqueue(key)
        except ApiError as exc:
            if exc.code != 404:
                raise

    def _emit(self, pod: Obj, events: Events) -> None:
        for etype, reason, message in events:
            try:
                self.recorder(pod, etype, reason, message)
            except Exception:  # noqa: BLE001 - an event that could not be recorded is only logged
                log.exception("recording event %s for pod %s failed", reason, pod["metadata"].get("name"))

    def pods(self) -> dict[Key, dict[str, int | None]]:
        """{(namespace, name): {container: pid or None}}: what runs, for `taly local status` and tests."""
        with self._lock:
            return {k: {n: (c.proc.pid if c.proc else None) for n, c in p.containers.items()}
                    for k, p in self._pods.items()}
