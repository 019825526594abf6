"""A stand-in kubelet for the controllers' tests: no processes, pods' states as a test wants them.

It watches the store like the real kubelet and writes what the real one would write for a started
container: phase Running, the PodScheduled/Initialized/ContainersReady/Ready conditions, container
statuses, a podIP. Whether a pod turns Ready is the test's call: `auto_ready` (every pod at once),
`never_ready` (images that stay unready, like a bad release), or `make_ready(name)` by hand. A pod
deleted gracefully is finished at once (its "process" stops), unless `hold_terminating` is set.
"""

from __future__ import annotations

import itertools
import queue
import threading
from typing import Any, Callable

from taly_ops.local.cluster.apierrors import ApiError


def _stamp(seconds: float) -> str:
    import time
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(seconds)))


class StubKubelet:
    def __init__(self, store: Any, clock: Callable[[], float], auto_ready: bool = True,
                 never_ready: tuple[str, ...] = (), hold_terminating: bool = False) -> None:
        self.store = store
        self.clock = clock
        self.auto_ready = auto_ready
        self.never_ready = set(never_ready)
        self.hold_terminating = hold_terminating
        self._ips = itertools.count(2)
        self._work: queue.Queue = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="stub-kubelet", daemon=True)
        store.add_listener(self._on_change)

    def start(self) -> "StubKubelet":
        for pod in self.store.list("pods")[0]:
            self._work.put((pod["metadata"]["namespace"], pod["metadata"]["name"]))
        self._thread.start()
        return self

    def stop(self) -> None:
        self._work.put(None)
        self._thread.join(timeout=5)

    def _on_change(self, event: str, plural: str, obj: dict) -> None:
        if plural == "pods" and event != "DELETED":
            self._work.put((obj["metadata"].get("namespace"), obj["metadata"]["name"]))

    def _run(self) -> None:
        while True:
            item = self._work.get()
            if item is None:
                return
            try:
                self._sync(*item)
            except ApiError:
                pass  # the pod went meanwhile

    def _sync(self, namespace: str, name: str) -> None:
        pod = self.store.get("pods", namespace, name)
        if pod["metadata"].get("deletionTimestamp"):
            if not self.hold_terminating:
                self.store.delete("pods", namespace, name, grace_seconds=0)
            return
        if (pod.get("status") or {}).get("phase") == "Running":
            return
        images = {c.get("image") for c in pod["spec"].get("containers") or []}
        ready = self.auto_ready and not (images & self.never_ready)
        self._write(pod, ready, ip=f"127.0.1.{next(self._ips)}")

    def make_ready(self, namespace: str, name: str, ready: bool = True) -> None:
        pod = self.store.get("pods", namespace, name)
        self._write(pod, ready)

    def _write(self, pod: dict, ready: bool, ip: str | None = None) -> None:
        now = _stamp(self.clock())
        flag = "True" if ready else "False"

        def write(p: dict) -> None:
            status = p.setdefault("status", {})
            before = {c["type"]: c for c in status.get("conditions") or []}

            def condition(ctype: str, value: str) -> dict:
                old = before.get(ctype)
                since = old["lastTransitionTime"] if old and old.get("status") == value else now
                return {"type": ctype, "status": value, "lastProbeTime": None, "lastTransitionTime": since}
            status["phase"] = "Running"
            status.setdefault("startTime", now)
            if ip:
                status["podIP"] = ip
                status["podIPs"] = [{"ip": ip}]
            status["conditions"] = [condition("PodScheduled", "True"), condition("Initialized", "True"),
                                    condition("ContainersReady", flag), condition("Ready", flag)]
            status["containerStatuses"] = [
                {"name": c["name"], "image": c.get("image"), "imageID": "", "ready": ready, "restartCount": 0,
                 "started": True, "state": {"running": {"startedAt": status["startTime"]}}}
                for c in p["spec"].get("containers") or []]
        self.store.mutate("pods", pod["metadata"]["namespace"], pod["metadata"]["name"], write, subresource="status")
