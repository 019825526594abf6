"""Redis: a primary and a replica, password-protected, no persistence, loopback only.

The primary syncs diskless with no delay, so the replica's link is up a moment after it starts.
Settings (the password among them) live in a mode-600 config file, never on a command line.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from ..adapters import redis as redis_adapter
from .context import HOST, Context
from .state import Component
from . import supervisor

BIN_ENV = "TALY_REDIS_SERVER"


def binary() -> str | None:
    return os.environ.get(BIN_ENV) or shutil.which("redis-server")


def preflight() -> list[tuple[str, str]]:
    if not binary():
        return [("redis-server is not installed", f"apt-get install redis-server, or set {BIN_ENV}")]
    return []


def _config(path: Path, directory: Path, port: int, password: str, primary_port: int | None) -> None:
    lines = [
        f"bind {HOST}", f"port {port}", "daemonize no", "protected-mode yes", f'dir "{directory}"', "save \"\"",
        "appendonly no", 'logfile ""', f"requirepass {password}", f"masterauth {password}",
        "repl-diskless-sync yes", "repl-diskless-sync-delay 0",
    ]
    if primary_port:
        lines += [f"replicaof {HOST} {primary_port}", "replica-read-only yes"]
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write("\n".join(lines) + "\n")


def ping(port: int, password: str) -> bool:
    return redis_adapter.ping(redis_adapter.RedisServer(HOST, port, password))


def info(port: int, password: str, section: str = "replication") -> dict[str, str]:
    """INFO <section> of a local server, every value as text."""
    return {k: str(v) for k, v in redis_adapter.info(redis_adapter.RedisServer(HOST, port, password), section).items()}


def start(ctx: Context) -> None:
    pw = ctx.passwords["redis"]
    pport, rport = ctx.ports["redis-primary"], ctx.ports["redis-replica"]
    (ctx.state_dir / "redis").mkdir(mode=0o700, exist_ok=True)
    for name, port, upstream in (("redis-primary", pport, None), ("redis-replica", rport, pport)):
        directory = ctx.state_dir / "redis" / name.removeprefix("redis-")
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        conf = directory / "redis.conf"
        _config(conf, directory, port, pw, upstream)
        log = ctx.log(name)
        spawned = supervisor.spawn([binary(), str(conf)], log=log, cwd=directory)
        ctx.record(name, spawned, port, log, host=HOST, role="replica" if upstream else "primary",
                   **({"primary_port": upstream} if upstream else {}))
        ctx.wait(lambda: ping(port, pw), component=name, what="PONG", timeout=20, log=log,
                 pid=spawned.pid)
        ctx.say(name, f"ready on {HOST}:{port}")
    ctx.wait(lambda: info(rport, pw).get("master_link_status") == "up", component="redis-replica",
             what="replication link to the primary", timeout=20, log=ctx.log("redis-replica"))
    ctx.say("redis-replica", "linked to the primary")


def restart(ctx: Context, dead: set[str]) -> None:
    """Start the stopped servers again with their own config files, on their own ports (the replica resyncs)."""
    pw = ctx.passwords["redis"]
    for name in ("redis-primary", "redis-replica"):
        if name not in dead:
            continue
        port, log = ctx.ports[name], ctx.log(name)
        directory = ctx.state_dir / "redis" / name.removeprefix("redis-")
        old = ctx.state.component(name)
        spawned = supervisor.spawn([binary(), str(directory / "redis.conf")], log=log, cwd=directory)
        ctx.record(name, spawned, port, log, **(old.info if old else {}))
        ctx.wait(lambda port=port: ping(port, pw), component=name, what="PONG", timeout=20,
                 log=log, pid=spawned.pid)
        ctx.say(name, f"restarted on {HOST}:{port}")
    ctx.wait(lambda: info(ctx.ports["redis-replica"], pw).get("master_link_status") == "up", component="redis-replica",
             what="replication link to the primary", timeout=20, log=ctx.log("redis-replica"))


def stop(component: Component) -> bool:
    return supervisor.stop(component.pid, component.start_time, pgid=component.pgid, timeout=10)
