"""A throwaway PostgreSQL 15 instance for restore drills: initdb in a temp dir, its own free port.

Built from the same pieces as the estate's servers (local/postgres.py, supervisor.py): as root it
runs as `postgres`, listens on 127.0.0.1 only (no Unix socket), SCRAM with a random password, in
its own session so it can be stopped with whatever it forked.
"""

from __future__ import annotations

import os
import secrets
import signal
from dataclasses import dataclass
from pathlib import Path

from . import postgres, supervisor, tls
from .context import HOST, USER

SETTINGS = """
# taly drill scratch instance
listen_addresses = '127.0.0.1'
unix_socket_directories = ''
max_connections = 20
shared_buffers = 64MB
fsync = off
synchronous_commit = off
full_page_writes = off
"""


@dataclass
class Scratch:
    root: Path
    port: int
    password: str
    pid: int | None = None
    start_time: int | None = None
    pgid: int | None = None

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def log(self) -> Path:
        return self.root / "postgres.log"


def prepare(root: Path, port: int) -> Scratch:
    """The instance's directory (enterable by the server's OS user); nothing runs yet."""
    root.mkdir(parents=True, mode=0o700, exist_ok=True)
    postgres._own(root)
    return Scratch(root=root, port=port, password=secrets.token_hex(16))


def initdb(s: Scratch, timeout: float = 120) -> None:
    pwfile = s.root / "pwfile"
    fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(s.password + "\n")
    postgres._own(pwfile)
    try:
        supervisor.run([str(postgres.bin_dir() / "initdb"), "-D", str(s.data_dir), "-U", USER, f"--pwfile={pwfile}",
                        "--auth=scram-sha-256", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync", "--no-instructions"],
                       component="drill-postgres", log=s.log, user=postgres.os_user(), cwd=s.root, timeout=timeout)
    finally:
        pwfile.unlink(missing_ok=True)
    with open(s.data_dir / "postgresql.conf", "a") as f:
        f.write(SETTINGS + tls.SETTINGS)
    tls.write_server_certificate(s.data_dir, postgres._own)


def spawn(s: Scratch) -> supervisor.Spawned:
    spawned = supervisor.spawn([str(postgres.bin_dir() / "postgres"), "-D", str(s.data_dir), "-p", str(s.port)],
                               log=s.log, user=postgres.os_user(), cwd=s.root)
    s.pid, s.start_time, s.pgid = spawned.pid, spawned.start_time, spawned.pgid
    return spawned


def wait_ready(s: Scratch, timeout: float = 60) -> None:
    admin = postgres.conninfo(HOST, s.port, s.password, dbname="postgres")
    supervisor.wait_until(lambda: bool(postgres._query(admin, "SELECT 1")), component="drill-postgres",
                          what="connection", timeout=timeout, log=s.log, pid=s.pid)


def stop(pid: int | None, start_time: int | None, pgid: int | None) -> bool:
    """Fast shutdown (SIGINT), SIGKILL after 20 s; True if it had to kill."""
    return supervisor.stop(pid, start_time, pgid=pgid, sig=signal.SIGINT, timeout=20)
