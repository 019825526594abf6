"""Liveness, readiness and startup probes as the kubelet runs them (pkg/kubelet/prober).

A probe's result flips only after successThreshold consecutive successes or failureThreshold
consecutive failures; readiness starts as failure, liveness and startup as success (startup is
"not started" until it first flips). httpGet succeeds on a status 200-399, tcpSocket on a connection;
exec and grpc probes are not modelled and fail, saying so. One timer thread schedules every probe;
a small pool runs them, so a probe that hangs until its timeout delays no other.
"""

from __future__ import annotations

import http.client
import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable

from .containers import Timers

Obj = dict[str, Any]
KINDS = ("startup", "liveness", "readiness")
USER_AGENT = "kube-probe/1.35"


@dataclass(frozen=True)
class ProbeSpec:
    kind: str                   # startup | liveness | readiness
    handler: Obj                # {"httpGet": {...}} | {"tcpSocket": {...}} | ...
    initial_delay: float = 0.0
    period: float = 10.0
    timeout: float = 1.0
    success_threshold: int = 1
    failure_threshold: int = 3

    @classmethod
    def from_container(cls, kind: str, container: Obj) -> "ProbeSpec | None":
        """The container's <kind>Probe with the API server's defaults, or None when it has none."""
        p = container.get(f"{kind}Probe")
        if not p:
            return None
        handler = {k: v for k, v in p.items() if k in ("httpGet", "tcpSocket", "exec", "grpc")}
        return cls(kind, handler, float(p.get("initialDelaySeconds") or 0), float(p.get("periodSeconds") or 10),
                   float(p.get("timeoutSeconds") or 1), int(p.get("successThreshold") or 1),
                   int(p.get("failureThreshold") or 3))


class ProbeState:
    """The threshold logic of one probe worker: the result it reports, and whether a run flipped it."""

    def __init__(self, spec: ProbeSpec) -> None:
        self.spec = spec
        self.result = spec.kind != "readiness"
        self.started = spec.kind != "startup"   # startup: nothing has succeeded yet
        self._last: bool | None = None
        self._run = 0

    def record(self, ok: bool) -> bool:
        """Take one probe's outcome; True when the reported result changed."""
        self._run = self._run + 1 if ok == self._last else 1
        self._last = ok
        threshold = self.spec.success_threshold if ok else self.spec.failure_threshold
        if self._run < threshold:
            return False
        changed = ok != self.result or (self.spec.kind == "startup" and ok and not self.started)
        self.result = ok
        if ok:
            self.started = True
        return changed


def resolve_port(port: Any, container: Obj) -> int:
    """A probe's port: a number, or the name of one of the container's ports."""
    if isinstance(port, int) or (isinstance(port, str) and port.isdigit()):
        return int(port)
    for p in container.get("ports") or []:
        if p.get("name") == port:
            return int(p["containerPort"])
    raise ValueError(f"port {port!r} is not a port of container {container.get('name')!r}")


def run(spec: ProbeSpec, host: str, container: Obj) -> tuple[bool, str]:
    """Probe once: (success, what failed, worded as the kubelet's events word it)."""
    h = spec.handler
    try:
        if "httpGet" in h:
            g = h["httpGet"] or {}
            return _http(g.get("host") or host, resolve_port(g.get("port"), container), g.get("path") or "/",
                         (g.get("scheme") or "HTTP").upper(), g.get("httpHeaders") or [], spec.timeout)
        if "tcpSocket" in h:
            t = h["tcpSocket"] or {}
            port = resolve_port(t.get("port"), container)
            with socket.create_connection((t.get("host") or host, port), timeout=spec.timeout):
                return True, ""
    except ValueError as exc:
        return False, str(exc)
    except OSError as exc:
        return False, f"dial tcp {host}: {exc}"
    kind = next(iter(h), "none")
    return False, f"{kind} probes are not modelled by the local kubelet (httpGet and tcpSocket are)"


def _http(host: str, port: int, path: str, scheme: str, headers: list, timeout: float) -> tuple[bool, str]:
    url = f"{scheme.lower()}://{host}:{port}{path}"
    if scheme == "HTTPS":
        import ssl
        conn: http.client.HTTPConnection = http.client.HTTPSConnection(
            host, port, timeout=timeout, context=ssl._create_unverified_context())  # the kubelet skips verification
    else:
        conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        sent = {"User-Agent": USER_AGENT, "Accept": "*/*", "Connection": "close"}
        sent.update({str(x.get("name")): str(x.get("value")) for x in headers if isinstance(x, dict)})
        conn.request("GET", path, headers=sent)
        resp = conn.getresponse()
        resp.read(10 * 1024)
    except socket.timeout:
        return False, f'Get "{url}": context deadline exceeded (Client.Timeout exceeded while awaiting headers)'
    except OSError as exc:
        return False, f'Get "{url}": {exc}'
    except http.client.HTTPException as exc:
        return False, f'Get "{url}": {type(exc).__name__}: {exc}'
    finally:
        conn.close()
    if 200 <= resp.status < 400:
        return True, ""
    return False, f"HTTP probe failed with statuscode: {resp.status}"


ResultFn = Callable[[Any, ProbeState, bool, bool, str], None]   # (key, state, ok, changed, message)


class Prober:
    """Runs every registered probe on its schedule; on_result(key, state, ok, changed, message) after each run."""

    def __init__(self, timers: Timers, on_result: ResultFn, workers: int = 4) -> None:
        self.timers = timers
        self.on_result = on_result
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="kubelet-probe")
        self._lock = threading.Lock()
        self._active: dict[Any, tuple[ProbeSpec, str, Obj, ProbeState]] = {}

    def add(self, key: Any, spec: ProbeSpec, host: str, container: Obj, delay: float) -> ProbeState:
        """Probe `spec` of `container` at `host` from `delay` seconds on, every period, until removed."""
        state = ProbeState(spec)
        with self._lock:
            self._active[key] = (spec, host, container, state)
        self.timers.after(delay, lambda: self._due(key, state))
        return state

    def remove(self, key: Any) -> None:
        with self._lock:
            self._active.pop(key, None)

    def shutdown(self) -> None:
        with self._lock:
            self._active.clear()
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _current(self, key: Any, state: ProbeState) -> tuple[ProbeSpec, str, Obj, ProbeState] | None:
        with self._lock:
            entry = self._active.get(key)
        return entry if entry is not None and entry[3] is state else None

    def _due(self, key: Any, state: ProbeState) -> None:
        if self._current(key, state) is None:
            return
        try:
            self._pool.submit(self._probe, key, state)
        except RuntimeError:  # the pool is shut down: the kubelet is stopping
            return

    def _probe(self, key: Any, state: ProbeState) -> None:
        entry = self._current(key, state)
        if entry is None:
            return
        spec, host, container, _ = entry
        try:
            ok, message = run(spec, host, container)
            if self._current(key, state) is not None:
                self.on_result(key, state, ok, state.record(ok), message)
        finally:
            if self._current(key, state) is not None:
                self.timers.after(spec.period, lambda: self._due(key, state))
