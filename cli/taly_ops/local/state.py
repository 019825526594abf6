"""The local estate's state directory and its state file (state.json, mode 600).

The state file lists every process `taly local up` started (name, pid, its start time, process group,
port, log, non-secret connection info), the local endpoints with their passwords, and a `contract`
shaped like taly_platform.contract.EnvironmentContract. It is written as each process starts, so a
`down` after an interrupted `up` still finds everything.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..errors import BadInput
from . import supervisor

STATE_FILE = "state.json"
LOCK_FILE = ".lock"
LOGS = "logs"
# Everything `up` creates in the state directory; `down` removes these and nothing else.
RUNTIME_ENTRIES = ("postgres", "redis", "rabbitmq", "moto", "prometheus", "cluster", "kubeconfig", LOGS, STATE_FILE)
ENV_VAR = "TALY_LOCAL_STATE"


def resolve_state_dir(option: Path | None = None) -> Path:
    """--state-dir, else $TALY_LOCAL_STATE, else .taly/local under the project root."""
    if option is not None:
        path = option
    elif env := os.environ.get(ENV_VAR):
        path = Path(env)
    else:
        from ..project import project_root

        path = project_root() / ".taly" / "local"
    path = path.expanduser().absolute()
    if path.exists() and not path.is_dir():
        raise BadInput(f"state directory {path} exists and is not a directory")
    return path


@dataclass
class Component:
    name: str
    pid: int
    port: int | None
    start_time: int | None = None  # /proc start time: guards against pid reuse
    pgid: int | None = None
    log: str | None = None
    info: dict[str, Any] = field(default_factory=dict)  # connection info, never a secret

    @property
    def running(self) -> bool:
        return supervisor.alive(self.pid, self.start_time)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Component":
        return cls(**{k: data.get(k) for k in ("name", "pid", "port", "start_time", "pgid", "log")},
                   info=dict(data.get("info") or {}))


@dataclass
class State:
    state_dir: Path
    phase: str = "starting"  # "starting" while up runs, then "running"
    size: int = 0
    started_at: str = ""
    components: list[Component] = field(default_factory=list)
    endpoints: dict[str, Any] = field(default_factory=dict)
    contract: dict[str, Any] | None = None
    ports: dict[str, int] = field(default_factory=dict)  # every port chosen at `up`: a restart reuses them
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    @property
    def path(self) -> Path:
        return self.state_dir / STATE_FILE

    def component(self, name: str) -> Component | None:
        return next((c for c in self.components if c.name == name), None)

    def record(self, component: Component) -> None:
        """Add (or replace) a started process and write the file at once: it must never be lost."""
        with self._lock:
            self.components = [c for c in self.components if c.name != component.name] + [component]
            self._save_locked()

    def save(self) -> None:
        with self._lock:
            self._save_locked()

    def _save_locked(self) -> None:
        data = {
            "version": 1, "phase": self.phase, "state_dir": str(self.state_dir), "size": self.size,
            "started_at": self.started_at, "components": [c.to_json() for c in self.components],
            "endpoints": self.endpoints, "contract": self.contract, "ports": self.ports,
        }
        self.state_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(STATE_FILE + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            os.fchmod(f.fileno(), 0o600)
            json.dump(data, f, indent=2)
            f.write("\n")
        os.replace(tmp, self.path)

    def dead(self) -> list[Component]:
        return [c for c in self.components if not c.running]


def load(state_dir: Path) -> State | None:
    path = state_dir / STATE_FILE
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise BadInput(f"cannot read the local state file {path}: {exc}",
                       hint="stop what it started by hand, then delete the file") from None
    if not isinstance(data, dict) or not isinstance(data.get("components"), list):
        raise BadInput(f"{path} is not a taly local state file")
    return State(
        state_dir=state_dir, phase=data.get("phase", "running"), size=int(data.get("size") or 0),
        started_at=data.get("started_at", ""), components=[Component.from_json(c) for c in data["components"]],
        endpoints=data.get("endpoints") or {}, contract=data.get("contract"),
        ports={str(k): int(v) for k, v in (data.get("ports") or {}).items()},
    )


def remove_runtime(state_dir: Path, keep_logs: bool = False) -> None:
    """Delete what `up` created in the state directory (only that), and the directory if then empty."""
    for name in RUNTIME_ENTRIES + (STATE_FILE + ".tmp",):
        if keep_logs and name == LOGS:
            continue
        target = state_dir / name
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target, ignore_errors=True)
        else:
            try:
                target.unlink()
            except FileNotFoundError:
                pass


def remove_state_dir_if_empty(state_dir: Path) -> None:
    try:
        (state_dir / LOCK_FILE).unlink()
    except FileNotFoundError:
        pass
    try:
        state_dir.rmdir()
    except OSError:
        pass


class Lock:
    """An exclusive lock on the state directory for the length of an up or down."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.fd: int | None = None

    def __enter__(self) -> "Lock":
        import fcntl

        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.fd = os.open(self.state_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(self.fd)
            self.fd = None
            if exc.errno in (errno.EAGAIN, errno.EACCES):
                raise BadInput(f"another `taly local` command is working on {self.state_dir}",
                               hint="wait for it to finish") from None
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
