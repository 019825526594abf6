"""Events as client-go's recorder writes them (core/v1 Event, what `kubectl describe` and
`kubectl get events` show): named `<object>.<hex nanoseconds>`, and an identical event repeated
(same object, type, reason, message, source) counted on the first one rather than written again.

Events are best effort, as upstream: a failed write is dropped, never raised into a sync.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any, Callable

from ..apierrors import ApiError
from .objects import Obj, rfc3339

NORMAL = "Normal"
WARNING = "Warning"


class EventRecorder:
    CACHE = 4096  # client-go's correlator cache size

    def __init__(self, store: Any, component: str, clock: Callable[[], float]) -> None:
        self.store = store
        self.component = component
        self.clock = clock
        self._seen: OrderedDict[tuple, tuple[str, str]] = OrderedDict()
        self._lock = threading.Lock()
        self._last_ns = 0

    def event(self, obj: Obj, etype: str, reason: str, message: str) -> None:
        m = obj.get("metadata") or {}
        namespace = m.get("namespace") or "default"
        involved = {"apiVersion": obj.get("apiVersion"), "kind": obj.get("kind"), "namespace": m.get("namespace"),
                    "name": m.get("name"), "uid": m.get("uid"), "resourceVersion": m.get("resourceVersion")}
        involved = {k: v for k, v in involved.items() if v}
        now = self.clock()
        key = (namespace, involved.get("kind"), involved.get("name"), involved.get("uid"), etype, reason, message)
        with self._lock:
            seen = self._seen.get(key)
        if seen is not None and self._bump(seen, now):
            return
        with self._lock:  # a stopped (or coarse) clock must not give two events one name
            self._last_ns = max(int(now * 1e9), self._last_ns + 1)
            name = f"{m.get('name')}.{self._last_ns:x}"
        event = {"apiVersion": "v1", "kind": "Event",
                 "metadata": {"name": name, "namespace": namespace},
                 "involvedObject": involved, "reason": reason, "message": message, "type": etype,
                 "source": {"component": self.component},
                 "firstTimestamp": rfc3339(now), "lastTimestamp": rfc3339(now), "count": 1,
                 "reportingComponent": self.component, "reportingInstance": ""}
        try:
            created = self.store.create("events", event)
        except ApiError:  # best effort, as upstream's recorder
            return
        with self._lock:
            self._seen[key] = (namespace, created["metadata"]["name"])
            while len(self._seen) > self.CACHE:
                self._seen.popitem(last=False)

    def _bump(self, seen: tuple[str, str], now: float) -> bool:
        def bump(ev: Obj) -> None:
            ev["count"] = int(ev.get("count") or 1) + 1
            ev["lastTimestamp"] = rfc3339(now)
        try:
            self.store.mutate("events", seen[0], seen[1], bump)
            return True
        except ApiError:  # the first event is gone: write a new one
            return False
