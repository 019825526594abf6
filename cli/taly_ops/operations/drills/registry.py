"""The drill registry (<state dir>/drills/registry.json, under a file lock): every scratch instance on this machine.

A scratch instance (a drill's PostgreSQL, a data refresh's) is registered before it starts and its
pid recorded as soon as it is spawned, so `taly drill reap` can always find and remove it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from ...errors import BadInput
from ..backup import iso, now
from ...environment import Environment

import contextlib
import json

DRILLS_DIR = "drills"
REGISTRY = "registry.json"
# scratch instances in the registry: drills and `taly data refresh`
SCRATCH_PREFIXES = ("drill-", "refresh-")  # scratch instances in the registry: drills and `taly data refresh`


@dataclass(frozen=True)
class ScratchHost:
    """Where this machine keeps an environment's scratch instances: all that reaping them needs (no estate, no bucket)."""

    name: str
    state_dir: Path


def drills_dir(env: Environment | ScratchHost) -> Path:
    d = env.state_dir / DRILLS_DIR
    d.mkdir(parents=True, exist_ok=True)
    os.chmod(d, 0o711)  # the server's OS user must enter it
    return d


@contextlib.contextmanager
def registry(env: Environment) -> Iterator[dict[str, Any]]:
    """The registry, locked; written back on exit."""
    import fcntl

    d = drills_dir(env)
    fd = os.open(d / (REGISTRY + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        path = d / REGISTRY
        try:
            data = json.loads(path.read_text())
        except (FileNotFoundError, ValueError):
            data = {}
        data.setdefault("drills", {})
        yield data
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=2) + "\n")
        os.replace(tmp, path)
    finally:
        os.close(fd)


def registry_entries(env: Environment) -> dict[str, dict[str, Any]]:
    with registry(env) as reg:
        return dict(reg["drills"])


def register_scratch(env: Environment, scratch_id: str, *, backup_id: str, root: Path, port: int,
                     keep: bool = False) -> None:
    """Record a scratch instance in the registry before anything starts (drills and data refreshes alike)."""
    from ...local import supervisor

    with registry(env) as reg:
        reg["drills"][scratch_id] = {"drill_id": scratch_id, "backup_id": backup_id, "dir": str(root), "port": port,
                                     "owner_pid": os.getpid(), "owner_start_time": supervisor.start_time(os.getpid()),
                                     "pid": None, "start_time": None, "pgid": None, "keep": keep,
                                     "registered_at": iso(now())}


def start_scratch(env: Environment, scratch_id: str, scratch: Any, spawned_out: dict[str, Any]) -> None:
    """initdb and start a registered scratch instance; its pid reaches the registry before it is waited for."""
    from ...local import scratch_postgres

    scratch_postgres.initdb(scratch)
    spawned = scratch_postgres.spawn(scratch)
    spawned_out.update(pid=spawned.pid, start_time=spawned.start_time, pgid=spawned.pgid)
    with registry(env) as reg:
        reg["drills"][scratch_id].update(pid=spawned.pid, start_time=spawned.start_time, pgid=spawned.pgid)
    scratch_postgres.wait_ready(scratch)


def check_scratch_dir(env: Environment) -> None:
    """BadInput (before anything starts) when a scratch PostgreSQL could not run in env's drills directory."""
    from ...local import postgres as local_pg

    where = env.state_dir / DRILLS_DIR
    problems = local_pg.preflight(where)
    if problems:
        raise BadInput(f"the scratch instance cannot run in {where}: {problems[0][0]}",
                       hint=problems[0][1] + ("" if env.is_local else
                                              f"; for {env.name}, point $TALY_STATE_DIR somewhere it can reach"))
