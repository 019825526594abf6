"""The local estate: every component started in parallel, recorded, reported and stopped by pid.

up:     idempotent. A state file whose processes all run is the running estate and is reported as is.
        One with processes gone gets them started again, on the same ports over the same data (the
        databases, the broker's queues, Prometheus's history): an estate's data is never discarded
        unless `down` is asked to. A state file `up` cannot restart from (an `up` that never finished)
        is refused, naming `taly local down`. If a component of a new estate cannot start,
        everything started is stopped again.
down:   stops exactly the recorded processes (by pid, checked against their start time, and their
        process groups), waits for them, and removes the state directory's runtime files.
status: each recorded process with its pid, port and whether it still runs.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..errors import BadInput, Unreachable
from . import aws_emulator, kube, postgres, prometheus, rabbitmq, redis, supervisor
from .context import DATABASE, HOST, REGION, USER, Context, choose_ports, make_passwords
from .sample_data import DEFAULT_SIZE, validate_size
from .state import LOGS, Component, Lock, State, load, remove_runtime, remove_state_dir_if_empty

Progress = Callable[[str], None]

# Started in parallel, one thread each; each launcher records its processes as they start.
LAUNCHERS: tuple[tuple[str, Callable[[Context], None]], ...] = (
    ("rabbitmq", rabbitmq.start),  # the slowest (about 6 s of Erlang boot): first
    ("postgres", postgres.start),
    ("redis", redis.start),
    ("moto", aws_emulator.start),
    ("monitoring", prometheus.start),
    ("kube", kube.start),  # deploys the chart, then waits for its pods: ready once RabbitMQ and the rest are
)
# Which launcher's restart() brings each recorded process back.
RESTARTERS: tuple[tuple[str, Callable[[Context, set[str]], None], tuple[str, ...]], ...] = (
    ("rabbitmq", rabbitmq.restart, ("epmd", "rabbitmq")),
    ("postgres", postgres.restart, ("postgres-primary", "postgres-replica")),
    ("redis", redis.restart, ("redis-primary", "redis-replica")),
    ("moto", aws_emulator.restart, ("moto",)),
    ("monitoring", prometheus.restart, ("postgres-exporter", "redis-exporter", "prometheus")),
    ("kube", kube.restart, ("kube",)),
)
# Stopped in parallel chains; within a chain, in order (replicas before primaries, the node before its epmd).
STOP_CHAINS: tuple[tuple[str, ...], ...] = (
    ("kube",), ("prometheus",), ("postgres-exporter",), ("redis-exporter",), ("moto",),
    ("redis-replica", "redis-primary"), ("postgres-replica", "postgres-primary"), ("rabbitmq", "epmd"),
)
ORDER = ("postgres-primary", "postgres-replica", "redis-primary", "redis-replica", "epmd", "rabbitmq", "moto",
         "postgres-exporter", "redis-exporter", "prometheus", "kube")
SECRET_KEYS = frozenset({"password", "secret_access_key"})


def _noop(line: str) -> None:
    pass


@dataclass
class UpResult:
    state: State
    already_running: bool
    seconds: float
    restarted: list[str] = field(default_factory=list)  # components that had stopped and were started again

    def to_json(self) -> dict[str, Any]:
        return {**status_json(self.state), "already_running": self.already_running, "seconds": round(self.seconds, 1),
                "restarted": self.restarted}


@dataclass
class DownResult:
    state_dir: Path
    stopped: list[dict[str, Any]]
    seconds: float

    def to_json(self) -> dict[str, Any]:
        return {"state_dir": str(self.state_dir), "stopped": self.stopped, "seconds": round(self.seconds, 1)}


# --- views ------------------------------------------------------------------------------------------

def redact(value: Any) -> Any:
    """A copy without passwords: what may be printed."""
    if isinstance(value, dict):
        return {k: redact(v) for k, v in value.items() if k not in SECRET_KEYS}
    if isinstance(value, list):
        return [redact(v) for v in value]
    return value


def _sorted(components: list[Component]) -> list[Component]:
    rank = {name: i for i, name in enumerate(ORDER)}
    return sorted(components, key=lambda c: rank.get(c.name, len(rank)))


def component_json(c: Component) -> dict[str, Any]:
    return {"name": c.name, "pid": c.pid, "port": c.port, "status": "running" if c.running else "stopped",
            **redact(c.info), "log": c.log}


def status_json(state: State | None, state_dir: Path | None = None) -> dict[str, Any]:
    if state is None:
        return {"state_dir": str(state_dir) if state_dir else None, "state_file": None, "phase": None, "components": []}
    return {"state_dir": str(state.state_dir), "state_file": str(state.path), "phase": state.phase, "size": state.size,
            "started_at": state.started_at, "components": [component_json(c) for c in _sorted(state.components)],
            "endpoints": redact(state.endpoints)}


def status(state_dir: Path) -> dict[str, Any]:
    """{"components": [{"name", "pid", "port", "status", ...}], ...}; no components when there is no estate."""
    return status_json(load(state_dir), state_dir)


def endpoints(ports: dict[str, int], passwords: dict[str, str]) -> dict[str, Any]:
    """Where the local servers listen, with their credentials (the state file is mode 600)."""
    def pg(port: int, role: str) -> dict[str, Any]:
        return {"host": HOST, "port": port, "user": USER, "password": passwords["postgres"], "database": DATABASE,
                "role": role, "url": f"postgresql://{USER}@{HOST}:{port}/{DATABASE}"}

    return {
        "postgres": {"primary": pg(ports["postgres-primary"], "primary"), "replica": pg(ports["postgres-replica"], "replica")},
        "redis": {"primary": {"host": HOST, "port": ports["redis-primary"], "url": f"redis://{HOST}:{ports['redis-primary']}/0"},
                  "replica": {"host": HOST, "port": ports["redis-replica"], "url": f"redis://{HOST}:{ports['redis-replica']}/0"},
                  "password": passwords["redis"]},
        "rabbitmq": {"host": HOST, "amqp_port": ports["amqp"], "management_port": ports["rabbitmq-management"],
                     "prometheus_port": ports["rabbitmq-prometheus"], "user": USER, "password": passwords["rabbitmq"],
                     "node": rabbitmq.node_name(ports["amqp"]), "amqp_url": f"amqp://{USER}@{HOST}:{ports['amqp']}/%2F",
                     "management_url": f"http://{HOST}:{ports['rabbitmq-management']}/",
                     "queues": rabbitmq.queue_names(), "dead_letter_exchange": rabbitmq.DLX},
        "aws": {"endpoint_url": aws_emulator.endpoint(ports["moto"]), "region": REGION,
                "access_key_id": aws_emulator.ACCESS_KEY, "secret_access_key": aws_emulator.SECRET_KEY},
        "prometheus": {"url": prometheus.url(ports["prometheus"]),
                       "exporters": {"postgres": prometheus.url(ports["postgres-exporter"]),
                                     "redis": prometheus.url(ports["redis-exporter"])}},
        "kubernetes": {"url": kube.api_url(ports), "context": kube.CONTEXT, "namespace": kube.NAMESPACE,
                       "state_metrics_url": f"http://{HOST}:{ports['kube-state-metrics']}/metrics"},
    }


# --- up ---------------------------------------------------------------------------------------------

def preflight(state_dir: Path) -> None:
    problems = (postgres.preflight(state_dir) + redis.preflight() + rabbitmq.preflight() + aws_emulator.preflight()
                + prometheus.preflight())
    if problems:
        message, hint = problems[0]
        more = f" (and {len(problems) - 1} more: {'; '.join(p for p, _ in problems[1:])})" if len(problems) > 1 else ""
        raise BadInput(message + more, hint=hint)


def _prepare_dir(state_dir: Path) -> None:
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
        # PostgreSQL runs as `postgres` when we are root: it must be able to enter (not list) the directory.
        os.chmod(state_dir, 0o711 if postgres.os_user() else 0o700)
    except OSError as exc:
        raise BadInput(f"cannot use {state_dir} as the local state directory: {exc.strerror or exc}") from None


def reconcile(state_dir: Path, progress: Progress = _noop) -> tuple[State | None, list[str]]:
    """The estate in state_dir, every process of it running, or None when there is none. Call with the lock held.

    Returns (state or None, the components that had stopped and were started again). Processes that
    stopped are started again on their ports over their data; nothing is deleted. A state file that
    cannot be restarted from is refused (exit 2) with what to do, and left as it is.
    """
    existing = load(state_dir)
    if existing is None:
        remove_runtime(state_dir)  # files of an `up` that died before writing its state, if any
        return None, []
    dead = existing.dead()
    if existing.components and not dead and existing.phase == "running":
        return existing, []
    names = ", ".join(c.name for c in dead) or "none"
    if existing.phase != "running" or not existing.ports or not existing.components:
        why = ("never finished starting" if existing.phase != "running" else
               "was started by an older taly that did not record its ports")
        raise BadInput(f"the local estate in {state_dir} {why} (not running: {names}); `taly local up` will not "
                       "replace it, as that would discard its data",
                       hint=f"`taly local down --state-dir {state_dir}` stops what is left and deletes its data; "
                            "then `taly local up` starts a new estate")
    progress(f"the local estate in {state_dir} has stopped components ({names}): starting them again on their "
             "ports, over their data")
    restart(existing, {c.name for c in dead}, progress)
    return existing, [c.name for c in _sorted(dead)]


def restart(state: State, dead: set[str], progress: Progress = _noop) -> None:
    """Start the named components of a recorded estate again (their launchers in parallel).

    A failure is raised after the others finish; nothing is stopped or deleted because of it.
    """
    e = state.endpoints
    passwords = {"postgres": e["postgres"]["primary"]["password"], "redis": e["redis"]["password"],
                 "rabbitmq": e["rabbitmq"]["password"]}
    ctx = Context(state_dir=state.state_dir, state=state, ports=dict(state.ports), passwords=passwords,
                  size=state.size, progress=progress)
    for c in state.components:
        if c.name in dead:
            supervisor.kill_leftovers(c.pgid, c.start_time)  # a killed postmaster's backends, say
    failures: list[tuple[str, BaseException]] = []

    def run(name: str, again: Callable[[Context, set[str]], None], members: tuple[str, ...]) -> None:
        try:
            again(ctx, dead & set(members))
        except BaseException as exc:  # noqa: BLE001 - reported below
            failures.append((name, exc))

    threads = [threading.Thread(target=run, args=item, name=f"taly-local-restart-{item[0]}", daemon=True)
               for item in RESTARTERS if dead & set(item[2])]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    state.save()
    if failures:
        name, exc = failures[0]
        if isinstance(exc, (BadInput, Unreachable)):
            raise exc
        raise supervisor.StartFailed(name, f"could not be started again: {type(exc).__name__}: {exc}",
                                     ctx.log(name)) from exc


def up(state_dir: Path, size: int = DEFAULT_SIZE, progress: Progress = _noop) -> UpResult:
    validate_size(size)
    t0 = time.monotonic()
    preflight(state_dir)
    _prepare_dir(state_dir)
    with Lock(state_dir):
        running, restarted = reconcile(state_dir, progress)
        if running is not None:
            note = f" (with {running.size} rows; `taly local down` first to change --size)" if running.size != size else ""
            progress(f"already running, started {running.started_at}{note}" if not restarted else
                     f"{time.monotonic() - t0:5.1f}s  started again: {', '.join(restarted)}{note}")
            return UpResult(running, not restarted, time.monotonic() - t0, restarted)
        (state_dir / LOGS).mkdir(mode=0o700, exist_ok=True)
        ports, passwords = choose_ports(), make_passwords()
        state = State(state_dir=state_dir, phase="starting", size=size,
                      started_at=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                      endpoints=endpoints(ports, passwords), ports=ports)
        state.save()
        kube.prepare(state_dir, ports)  # the cluster's token: Prometheus, starting alongside, reads it
        ctx = Context(state_dir=state_dir, state=state, ports=ports, passwords=passwords, size=size,
                      progress=progress, t0=t0)
        _start_all(ctx)
        state.phase = "running"
        state.save()
        progress(f"{time.monotonic() - t0:5.1f}s  estate up; state in {state.path}")
        return UpResult(state, False, time.monotonic() - t0)


def _start_all(ctx: Context) -> None:
    failures: list[tuple[str, BaseException]] = []

    def run(name: str, launch: Callable[[Context], None]) -> None:
        try:
            launch(ctx)
        except supervisor.Cancelled:
            pass
        except BaseException as exc:  # noqa: BLE001 - reported below, after the teardown
            failures.append((name, exc))
            ctx.cancel.set()

    threads = [threading.Thread(target=run, args=item, name=f"taly-local-{item[0]}", daemon=True) for item in LAUNCHERS]
    for t in threads:
        t.start()
    try:
        for t in threads:
            while t.is_alive():
                t.join(0.2)
    except KeyboardInterrupt:
        ctx.cancel.set()
        ctx.progress("interrupted: stopping what was started")
        for t in threads:
            t.join(30)
        _abandon(ctx)
        raise
    if failures:
        name, exc = failures[0]
        ctx.progress(f"{name} failed: stopping everything that was started")
        _abandon(ctx)
        if isinstance(exc, supervisor.StartFailed):
            raise exc
        if isinstance(exc, (BadInput, Unreachable)):
            raise exc
        main = {"postgres": "postgres-primary", "redis": "redis-primary", "monitoring": "prometheus"}.get(name, name)
        raise supervisor.StartFailed(main, f"{type(exc).__name__}: {exc}", ctx.log(main)) from exc


def _abandon(ctx: Context) -> None:
    """Stop what a failed or interrupted `up` started; keep the logs (and the state file if any process survived)."""
    left = stop_all(ctx.state, ctx.progress)
    if left:
        ctx.progress(f"could not stop {left}; {ctx.state.path} still lists them for `taly local down`")
        return
    remove_runtime(ctx.state_dir, keep_logs=True)


# --- down -------------------------------------------------------------------------------------------

def _stop_one(c: Component) -> bool:
    if c.name in ("postgres-primary", "postgres-replica"):
        return postgres.stop(c)  # fast shutdown: it removes its shared memory
    if c.name == "rabbitmq":
        return rabbitmq.stop(c)
    if c.name == "moto":
        return aws_emulator.stop(c)
    return supervisor.stop(c.pid, c.start_time, pgid=c.pgid, timeout=10)


def stop_all(state: State, progress: Progress = _noop) -> str:
    """Stop every recorded process (chains in parallel); returns a description of any left running.

    Every caller deletes the estate's files next (`down`, a failed `up`), so nothing is stopped
    gracefully for its data's sake: the broker and the emulator are killed outright.
    """
    by_name = {c.name: c for c in state.components}
    chains = [[by_name[n] for n in chain if n in by_name] for chain in STOP_CHAINS]
    known = {n for chain in STOP_CHAINS for n in chain}
    chains += [[c] for c in state.components if c.name not in known]
    t0 = time.monotonic()

    def run(chain: list[Component]) -> None:
        for c in chain:
            was_running = c.running
            try:
                forced = _stop_one(c)
            except OSError as exc:
                progress(f"{c.name}: cannot stop pid {c.pid}: {exc}")
                continue
            if was_running:
                progress(f"{time.monotonic() - t0:5.1f}s  {c.name:<20} stopped pid {c.pid}{' (killed)' if forced else ''}")

    threads = [threading.Thread(target=run, args=(chain,), daemon=True) for chain in chains if chain]
    for t in threads:
        t.start()
    for t in threads:
        t.join(90)
    left = [f"{c.name} (pid {c.pid})" for c in state.components if c.running]
    return ", ".join(left)


def down(state_dir: Path, progress: Progress = _noop) -> DownResult:
    t0 = time.monotonic()
    if not state_dir.is_dir():
        return DownResult(state_dir, [], 0.0)
    with Lock(state_dir):
        state = load(state_dir)
        stopped: list[dict[str, Any]] = []
        if state is None:
            progress(f"no local estate in {state_dir}")
        else:
            before = {c.name: c.running for c in state.components}
            left = stop_all(state, progress)
            if left:
                raise Unreachable(f"could not stop: {left}", hint=f"the state file {state.path} still lists them")
            stopped = [{"name": c.name, "pid": c.pid, "was_running": before[c.name]} for c in _sorted(state.components)]
        remove_runtime(state_dir)
        remove_state_dir_if_empty(state_dir)
    progress(f"{time.monotonic() - t0:5.1f}s  estate down")
    return DownResult(state_dir, stopped, time.monotonic() - t0)
