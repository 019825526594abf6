"""The kubelet's container runtime: starting a container's process, learning at once that it exited, the
restart back-off, and the one timer thread the kubelet and its prober share.

Processes start in the cluster's own process group (no new session): stopping the cluster's group
stops every pod. Exits are seen through pidfds in one poll() loop, not a thread per process.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import os
import select
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Protocol

from .images import Image

log = logging.getLogger("taly.cluster.kubelet")

STANDIN = Path(__file__).resolve().parent.parent / "standin.py"


@dataclass(frozen=True)
class Launch:
    """What the kubelet hands the launcher for one container start."""

    image: Image
    host: str                   # the pod's IP: the process listens there
    port: int                   # the container's first containerPort (the process may prefer its PORT env)
    env: dict[str, str]
    log: Path


class Launcher(Protocol):
    def __call__(self, launch: Launch) -> subprocess.Popen: ...


def standin_argv(launch: Launch) -> list[str]:
    """The stand-in, run by file path with -I -S (no site-packages, no taly_ops import: ~8 MB a process)."""
    i = launch.image
    return [sys.executable, "-I", "-S", str(STANDIN), "--service", i.service, "--version", i.tag,
            "--behaviour", i.behaviour, "--error-rate", repr(i.error_rate), "--latency-ms", str(i.latency_ms),
            "--host", launch.host, "--port", str(launch.port)]


def spawn_standin(launch: Launch) -> subprocess.Popen:
    return spawn(standin_argv(launch), launch.env, launch.log)


def spawn(argv: list[str], env: dict[str, str], log_file: Path) -> subprocess.Popen:
    """A child in our process group, stdout and stderr appended to its log, nothing inherited but env."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with open(log_file, "ab") as out:
        return subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                close_fds=True, cwd="/")


def exit_code(returncode: int) -> int:
    """A container's exit code as the runtime reports it: 128 + n for a process killed by signal n."""
    return 128 - returncode if returncode < 0 else returncode


# --- exits ------------------------------------------------------------------------------------------------------------

class ExitWatcher:
    """One thread: poll() over a pidfd per process, callback(exit code) once it exited (and was reaped)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._poll = select.poll()
        self._fds: dict[int, tuple[subprocess.Popen, Callable[[int], None]]] = {}
        self._polled: list[tuple[subprocess.Popen, Callable[[int], None]]] = []   # where pidfd_open is missing
        self._wake_r, self._wake_w = os.pipe()
        self._poll.register(self._wake_r, select.POLLIN)
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="kubelet-exits", daemon=True)
        self._thread.start()

    def watch(self, proc: subprocess.Popen, callback: Callable[[int], None]) -> None:
        with self._lock:
            try:
                fd = os.pidfd_open(proc.pid)
            except (AttributeError, OSError):
                self._polled.append((proc, callback))
            else:
                self._fds[fd] = (proc, callback)
                self._poll.register(fd, select.POLLIN)
        os.write(self._wake_w, b"x")

    def stop(self) -> None:
        self._stopped = True
        os.write(self._wake_w, b"x")
        self._thread.join(timeout=5)
        for fd in [*self._fds, self._wake_r, self._wake_w]:
            os.close(fd)

    def _run(self) -> None:
        while not self._stopped:
            events = self._poll.poll(200 if self._polled else None)
            done: list[tuple[subprocess.Popen, Callable[[int], None]]] = []
            with self._lock:
                for fd, _ in events:
                    if fd == self._wake_r:
                        os.read(self._wake_r, 4096)
                    elif fd in self._fds:
                        self._poll.unregister(fd)
                        os.close(fd)
                        done.append(self._fds.pop(fd))
                still = []
                for proc, cb in self._polled:
                    (done if proc.poll() is not None else still).append((proc, cb))
                self._polled = still
            for proc, cb in done:
                try:
                    cb(exit_code(proc.wait()))
                except Exception:  # noqa: BLE001 - a callback's bug must not stop exits being seen
                    log.exception("exit callback of pid %s failed", proc.pid)


# --- back-off ---------------------------------------------------------------------------------------------------------

@dataclass
class _Entry:
    period: float
    last_update: float


class Backoff:
    """k8s.io/client-go/util/flowcontrol.Backoff as the kubelet uses it for restarts and image pulls.

    next(): the first failure sets the period to `initial`, each later one doubles it up to `cap`; an
    entry untouched for 2 x cap starts over. in_backoff(key, since): seconds left while the period that
    began at `since` (the container's finishedAt) has not run out, else 0.
    """

    def __init__(self, clock: Callable[[], float], initial: float = 10.0, cap: float = 300.0) -> None:
        self.clock, self.initial, self.cap = clock, initial, cap
        self._entries: dict[object, _Entry] = {}

    def _expired(self, now: float, entry: _Entry) -> bool:
        return now - entry.last_update > 2 * self.cap

    def next(self, key: object, event_time: float) -> float:
        entry = self._entries.get(key)
        if entry is None or self._expired(event_time, entry):
            entry = self._entries[key] = _Entry(self.initial, 0.0)
        else:
            entry.period = min(entry.period * 2, self.cap)
        entry.last_update = self.clock()
        return entry.period

    def in_backoff(self, key: object, since: float) -> float:
        entry = self._entries.get(key)
        now = self.clock()
        if entry is None or self._expired(now, entry):
            return 0.0
        return max(0.0, entry.period - (now - since))

    def period(self, key: object) -> float:
        entry = self._entries.get(key)
        return entry.period if entry else 0.0

    def forget(self, key: object) -> None:
        self._entries.pop(key, None)


def go_duration(seconds: float) -> str:
    """A duration as Go prints it (10s, 1m20s, 5m0s): the kubelet's back-off messages carry it."""
    s = int(round(seconds))
    if s < 60:
        return f"{s}s"
    m, s = divmod(s, 60)
    return f"{m}m{s}s" if m < 60 else f"{m // 60}h{m % 60}m{s}s"


# --- timers -----------------------------------------------------------------------------------------------------------

@dataclass(order=True)
class _Timer:
    when: float
    seq: int
    fn: Callable[[], None] = field(compare=False)
    cancelled: bool = field(default=False, compare=False)


class Timers:
    """One thread running callbacks at their time (on the monotonic clock); callbacks must be quick."""

    def __init__(self, name: str = "kubelet-timers") -> None:
        self._heap: list[_Timer] = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def after(self, delay: float, fn: Callable[[], None]) -> _Timer:
        timer = _Timer(time.monotonic() + max(0.0, delay), next(self._seq), fn)
        with self._cond:
            heapq.heappush(self._heap, timer)
            self._cond.notify()
        return timer

    @staticmethod
    def cancel(timer: _Timer | None) -> None:
        if timer is not None:
            timer.cancelled = True

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stopped and (not self._heap or self._heap[0].when > time.monotonic()):
                    self._cond.wait(self._heap[0].when - time.monotonic() if self._heap else None)
                if self._stopped:
                    return
                timer = heapq.heappop(self._heap)
            if not timer.cancelled:
                try:
                    timer.fn()
                except Exception:  # noqa: BLE001 - one bad callback must not stop the others
                    log.exception("timer callback failed")
