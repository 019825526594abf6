"""One container's life in the kubelet: pull, environment, start, probes, exit, back-off, kill.

The kubelet (kubelet.py) owns the pods and the lock; it calls these under its lock and collects the
events (type, reason, message) they append, worded as the kubelet's own (`kubectl describe pod`).
"""

from __future__ import annotations

import os
import secrets
import signal
from dataclasses import dataclass, field
from pathlib import Path
from subprocess import Popen
from typing import Any, Callable

from ...errors import BadInput
from . import podenv, podstatus
from .containers import Backoff, ExitWatcher, Launch, Launcher, Timers, go_duration
from .images import Image, ImageRegistry
from .probes import Prober, ProbeSpec, ProbeState

Obj = dict[str, Any]
Key = tuple[str, str]                      # (namespace, name)
Events = list[tuple[str, str, str]]        # (Normal|Warning, reason, message)
HOST_IP = "127.0.0.1"
RETRY_SOON = 1.0                           # s: re-sync after ErrImagePull (-> ImagePullBackOff) or a config error
DEFAULT_GRACE = 30


def log_path(directory: Path | str, namespace: str, pod: str, container: str) -> Path:
    """Where a container's output goes (what `kubectl logs` shows)."""
    return Path(directory) / "logs" / f"{namespace}_{pod}_{container}.log"


def previous_log_path(directory: Path | str, namespace: str, pod: str, container: str) -> Path:
    """The output of the container's previous run (`kubectl logs --previous`)."""
    return log_path(directory, namespace, pod, container).with_suffix(".previous.log")


@dataclass
class ContainerRun:
    spec: Obj
    view: podstatus.Container
    proc: Popen | None = None
    started_at: float = 0.0
    finished_at: float | None = None       # of the last run: the back-off counts from it
    pull_failed_at: float | None = None
    readiness: bool = False
    probes: dict[str, ProbeState] = field(default_factory=dict)
    kill_timer: Any = None


@dataclass
class PodRun:
    uid: str
    key: Key
    ip: str
    start_time: float
    containers: dict[str, ContainerRun]
    restart_policy: str = "Always"
    grace: float = DEFAULT_GRACE           # spec.terminationGracePeriodSeconds
    deleting_since: float | None = None
    kill_at: float | None = None
    killed: bool = False


def signal_process(proc: Popen, sig: int) -> None:
    try:
        proc.send_signal(sig)
    except OSError:
        pass


@dataclass
class Lifecycle:
    registry: ImageRegistry
    directory: Path
    clock: Callable[[], float]
    launcher: Launcher
    timers: Timers
    exits: ExitWatcher
    prober: Prober
    hooks: Any                 # the kubelet: later(key, delay), lookup(plural, ns, name), exited(key, uid, name, cid, code)
    backoff_base: float = 10.0

    def __post_init__(self) -> None:
        self.restarts = Backoff(self.clock, self.backoff_base, 30 * self.backoff_base)
        self.pulls = Backoff(self.clock, self.backoff_base, 30 * self.backoff_base)

    def step(self, run: PodRun, pod: Obj, c: ContainerRun, spec: Obj, events: Events) -> None:
        """Leave the container running, keep it stopped, wait out its back-off, or start it."""
        if spec.get("image") != c.spec.get("image"):   # the one container field a pod may change: restart on it
            c.spec, c.view.image, c.view.image_id = spec, spec.get("image", ""), ""
            if c.proc is not None:
                events.append(("Normal", "Killing", f"Container {c.view.name} definition changed, will be restarted"))
                self.unprobe(run, c)
                self.kill(c, run.grace)
        if c.proc is not None or c.view.terminated is not None:
            return
        if pod["spec"].get("initContainers"):   # refused, not silently skipped
            refused = ("CreateContainerConfigError", "init containers are not modelled by the local kubelet")
            if c.view.waiting != refused:
                events.append(("Warning", "Failed", f"Error: {refused[1]}"))
            c.view.waiting = refused
            return
        name, bkey = c.view.name, (run.uid, c.view.name)
        if c.finished_at is not None:
            left = self.restarts.in_backoff(bkey, c.finished_at)
            if left > 0:
                pod_id = f"{run.key[1]}_{run.key[0]}({run.uid})"
                if not c.view.waiting or c.view.waiting[0] != "CrashLoopBackOff":
                    events.append(("Warning", "BackOff", f"Back-off restarting failed container {name} in pod {pod_id}"))
                c.view.waiting = ("CrashLoopBackOff", f"back-off {go_duration(self.restarts.period(bkey))} "
                                  f"restarting failed container={name} pod={pod_id}")
                self.hooks.later(run.key, left)
                return
            self.restarts.next(bkey, c.finished_at)
        image = self.pull(run, c, events)
        if image is None:
            return
        try:
            env = podenv.resolve(pod, c.spec, self.hooks.lookup, run.ip, HOST_IP)
        except podenv.EnvError as exc:
            if c.view.waiting != ("CreateContainerConfigError", str(exc)):
                events.append(("Warning", "Failed", f"Error: {exc}"))
            c.view.waiting = ("CreateContainerConfigError", str(exc))
            self.hooks.later(run.key, RETRY_SOON)
            return
        self.start(run, c, image, env, events)

    def pull(self, run: PodRun, c: ContainerRun, events: Events) -> Image | None:
        """The image from the local registry; ErrImagePull, then ImagePullBackOff, while it is not there."""
        ref, pkey = c.view.image, (run.uid, c.view.name)
        try:
            image, why = self.registry.resolve(ref), "not found in the local image registry"
        except BadInput as exc:
            image, why = None, exc.message
        if image is not None:
            self.pulls.forget(pkey)
            if not c.view.image_id:
                events.append(("Normal", "Pulled", f'Container image "{ref}" already present on machine'))
            c.view.image_id = image.image_id
            return image
        left = self.pulls.in_backoff(pkey, c.pull_failed_at) if c.pull_failed_at is not None else 0.0
        if left > 0:
            if c.view.waiting is None or c.view.waiting[0] != "ImagePullBackOff":
                events.append(("Normal", "BackOff", f'Back-off pulling image "{ref}"'))
            c.view.waiting = ("ImagePullBackOff", f'Back-off pulling image "{ref}"')
            self.hooks.later(run.key, left)
            return None
        c.pull_failed_at = self.clock()
        self.pulls.next(pkey, c.pull_failed_at)
        message = f'rpc error: code = NotFound desc = failed to pull and unpack image "{ref}": {why}'
        events += [("Normal", "Pulling", f'Pulling image "{ref}"'),
                   ("Warning", "Failed", f'Failed to pull image "{ref}": {message}'),
                   ("Warning", "Failed", "Error: ErrImagePull")]
        c.view.waiting = ("ErrImagePull", message)
        self.hooks.later(run.key, RETRY_SOON)
        return None

    def start(self, run: PodRun, c: ContainerRun, image: Image, env: dict[str, str], events: Events) -> None:
        name = c.view.name
        ports = [int(p["containerPort"]) for p in c.spec.get("ports") or []]
        out = log_path(self.directory, *run.key, name)
        now = self.clock()
        cid = "taly://" + secrets.token_hex(32)
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOSTNAME": run.key[1], **env}
        try:
            if c.finished_at is not None and out.exists():
                os.replace(out, previous_log_path(self.directory, *run.key, name))
            proc = self.launcher(Launch(image, run.ip, ports[0] if ports else 0, env, out))
        except (OSError, ValueError) as exc:   # ValueError: an env value with a NUL byte
            events.append(("Warning", "Failed", f"Error: failed to start container {name!r}: {exc}"))
            c.view.last_terminated = {**podstatus.terminated(128, now, now, cid), "reason": "StartError",
                                      "message": str(exc)}
            c.finished_at, c.view.waiting = now, None
            self.hooks.later(run.key, 0)
            return
        if c.finished_at is not None:
            c.view.restart_count += 1
        c.proc, c.started_at = proc, now
        c.view.container_id, c.view.running_since, c.view.waiting = cid, now, None
        probes = {k: ProbeSpec.from_container(k, c.spec) for k in ("startup", "liveness", "readiness")}
        c.view.started = probes["startup"] is None
        c.readiness = probes["readiness"] is None
        c.view.ready = c.view.started and c.readiness
        self.add_probes(run, c, ("startup",) if probes["startup"] else ("liveness", "readiness"))
        self.exits.watch(proc, lambda code: self.hooks.exited(run.key, run.uid, name, cid, code))
        events += [("Normal", "Created", f"Created container: {name}"), ("Normal", "Started", f"Started container {name}")]

    def add_probes(self, run: PodRun, c: ContainerRun, kinds: tuple[str, ...]) -> None:
        """Probe from started_at + initialDelaySeconds on (at once when that is past)."""
        for kind in kinds:
            spec = ProbeSpec.from_container(kind, c.spec)
            if spec is not None:
                delay = max(0.0, c.started_at + spec.initial_delay - self.clock())
                c.probes[kind] = self.prober.add((run.key, run.uid, c.view.name, c.view.container_id, kind), spec,
                                                 run.ip, c.spec, delay)

    def unprobe(self, run: PodRun, c: ContainerRun) -> None:
        for kind in list(c.probes):
            self.prober.remove((run.key, run.uid, c.view.name, c.view.container_id, kind))
        c.probes.clear()

    def exited(self, run: PodRun, c: ContainerRun, code: int) -> None:
        """Record a run that ended: terminated for good, or lastState of the next run."""
        now = self.clock()
        self.unprobe(run, c)
        Timers.cancel(c.kill_timer)
        record = podstatus.terminated(code, c.started_at, now, c.view.container_id)
        c.proc, c.finished_at = None, now
        c.view.running_since, c.view.ready, c.view.started = None, False, False
        policy = run.restart_policy
        if run.deleting_since is not None or policy == "Never" or (policy == "OnFailure" and code == 0):
            c.view.terminated = record
        else:
            c.view.last_terminated = record

    def probed(self, run: PodRun, c: ContainerRun, kind: str, state: ProbeState, events: Events) -> None:
        """A probe's result flipped: readiness, started, or a restart for a failed liveness/startup probe."""
        if kind == "readiness":
            c.readiness = state.result
        elif kind == "startup" and state.result:
            c.view.started = True
            self.unprobe(run, c)
            self.add_probes(run, c, ("liveness", "readiness"))
        else:
            events.append(("Normal", "Killing", f"Container {c.view.name} failed {kind} probe, will be restarted"))
            grace = (c.spec.get(f"{kind}Probe") or {}).get("terminationGracePeriodSeconds")
            self.unprobe(run, c)
            self.kill(c, float(run.grace if grace is None else grace))
        c.view.ready = c.view.started and c.readiness and c.proc is not None

    def kill(self, c: ContainerRun, grace: float) -> None:
        """SIGTERM now, SIGKILL after `grace` seconds if it is still running."""
        proc = c.proc
        if proc is None:
            return
        signal_process(proc, signal.SIGTERM)
        c.kill_timer = self.timers.after(grace, lambda: signal_process(proc, signal.SIGKILL))

    def forget(self, run: PodRun) -> None:
        """A pod gone for good: its probes, back-offs and logs."""
        for name, c in run.containers.items():
            self.unprobe(run, c)
            for backoff in (self.restarts, self.pulls):
                backoff.forget((run.uid, name))
            for path in (log_path(self.directory, *run.key, name), previous_log_path(self.directory, *run.key, name)):
                path.unlink(missing_ok=True)
