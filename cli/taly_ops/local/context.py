"""What every launcher gets: the state directory, the ports and passwords chosen for this run, a way to
record the processes it starts, a progress line printer and the cancel flag raised when another
component failed."""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from . import supervisor
from .state import LOGS, Component, State

HOST = "127.0.0.1"
USER = "taly"
DATABASE = "taly"
ENVIRONMENT = "local"
REGION = "eu-west-1"
DR_REGION = "eu-central-1"

PORT_NAMES = (
    "postgres-primary", "postgres-replica", "redis-primary", "redis-replica", "amqp", "rabbitmq-dist", "epmd",
    "rabbitmq-management", "rabbitmq-prometheus", "moto", "prometheus", "postgres-exporter", "redis-exporter",
    "kube-apiserver", "kube-state-metrics",
)


def choose_ports() -> dict[str, int]:
    return {name: supervisor.free_port(HOST) for name in PORT_NAMES}


def make_passwords() -> dict[str, str]:
    # Letters and digits only: they go into URLs, DSNs and config files unquoted.
    return {purpose: secrets.token_hex(16) for purpose in ("postgres", "redis", "rabbitmq")}


@dataclass
class Context:
    state_dir: Path
    state: State
    ports: dict[str, int]
    passwords: dict[str, str]
    size: int
    progress: Callable[[str], None] = lambda line: None
    cancel: threading.Event = field(default_factory=threading.Event)
    t0: float = field(default_factory=time.monotonic)

    def log(self, name: str) -> Path:
        return self.state_dir / LOGS / f"{name}.log"

    def say(self, component: str, message: str) -> None:
        self.progress(f"{time.monotonic() - self.t0:5.1f}s  {component:<20} {message}")

    def record(self, name: str, spawned: supervisor.Spawned, port: int | None, log: Path, **info) -> Component:
        component = Component(name=name, pid=spawned.pid, port=port, start_time=spawned.start_time,
                              pgid=spawned.pgid, log=str(log), info=info)
        self.state.record(component)
        return component

    def wait(self, check: Callable[[], bool], *, component: str, what: str, timeout: float,
             log: Path | None = None, pid: int | None = None, interval: float = 0.05) -> None:
        supervisor.wait_until(check, component=component, what=what, timeout=timeout, log=log, pid=pid,
                              cancel=self.cancel, interval=interval)

    def check_cancel(self, component: str) -> None:
        if self.cancel.is_set():
            raise supervisor.Cancelled(component)
