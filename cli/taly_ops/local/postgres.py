"""PostgreSQL 15: a primary loaded with the CMS schema and sample data, and a streaming replica.

Both run from the state directory, listen on 127.0.0.1 only (no Unix socket) and authenticate with
SCRAM. initdb and postgres refuse to run as root, so as root they run as the `postgres` user and
their data directories belong to it.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

from ..adapters import postgres as pg_adapter
from ..adapters.postgres import BIN_ENV, bin_dir  # noqa: F401 - where the server and its tools are
from .context import DATABASE, HOST, USER, Context
from .state import Component
from . import supervisor, tls

OS_USER = "postgres"

SETTINGS = """
# taly local
listen_addresses = '127.0.0.1'
unix_socket_directories = ''
wal_level = replica
max_wal_senders = 5
hot_standby = on
max_connections = 50
shared_buffers = 64MB
# A disposable copy: durability traded for speed.
fsync = off
synchronous_commit = off
# When the source last wrote (drills report the writes a restore would miss); RDS sets it too.
track_commit_timestamp = on
"""


def os_user() -> str | None:
    """Who runs PostgreSQL: `postgres` when we are root (initdb refuses root), else ourselves."""
    return OS_USER if os.geteuid() == 0 else None


def preflight(state_dir: Path) -> list[tuple[str, str]]:
    """(problem, hint) pairs that would stop PostgreSQL from starting."""
    problems = []
    for tool in ("initdb", "postgres", "pg_basebackup"):
        if not (bin_dir() / tool).is_file():
            problems.append((f"PostgreSQL's {tool} is not in {bin_dir()}",
                             f"apt-get install postgresql-15, or set {BIN_ENV} to its bin directory"))
            return problems
    user = os_user()
    if user:
        import pwd

        try:
            entry = pwd.getpwnam(user)
        except KeyError:
            return [(f"running as root, and there is no `{user}` user to run PostgreSQL as",
                     "install the postgresql package (it creates the user), or run as an ordinary user")]
        blocked = _untraversable(state_dir, entry.pw_uid, {entry.pw_gid, *os.getgrouplist(user, entry.pw_gid)})
        if blocked:
            problems.append((f"the `{user}` user cannot enter {blocked}, so PostgreSQL cannot use {state_dir}",
                             f"chmod o+x {blocked}, or pass --state-dir somewhere it can reach (e.g. under /tmp)"))
    return problems


def _untraversable(path: Path, uid: int, gids: set[int]) -> Path | None:
    """The first existing ancestor of path that uid cannot search, or None."""
    for parent in reversed([path, *path.parents]):
        try:
            st = parent.stat()
        except FileNotFoundError:
            break
        if st.st_uid == uid:
            ok = st.st_mode & 0o100
        elif st.st_gid in gids:
            ok = st.st_mode & 0o010
        else:
            ok = st.st_mode & 0o001
        if not ok:
            return parent
    return None


def _own(path: Path) -> None:
    if os_user():
        import pwd

        entry = pwd.getpwnam(OS_USER)
        os.chown(path, entry.pw_uid, entry.pw_gid)


def conninfo(host: str, port: int, password: str, dbname: str = DATABASE, user: str = USER) -> str:
    return pg_adapter.make_conninfo(host=host, port=port, dbname=dbname, user=user, password=password,
                                    connect_timeout=3)


def _query(info: str, sql: str) -> list[tuple]:
    return pg_adapter.query(info, sql)


def start(ctx: Context) -> None:
    """Primary (with schema and data), then the replica from a base backup; both recorded as they start."""
    from . import sample_data

    root = ctx.state_dir / "postgres"
    root.mkdir(mode=0o700, exist_ok=True)
    _own(root)
    user, pw = os_user(), ctx.passwords["postgres"]
    pport, rport = ctx.ports["postgres-primary"], ctx.ports["postgres-replica"]
    primary, replica = root / "primary", root / "replica"
    plog, rlog = ctx.log("postgres-primary"), ctx.log("postgres-replica")

    pwfile = root / "pwfile"
    fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(pw + "\n")
    _own(pwfile)
    ctx.say("postgres-primary", "initdb")
    try:
        supervisor.run([str(bin_dir() / "initdb"), "-D", str(primary), "-U", USER, f"--pwfile={pwfile}",
                        "--auth=scram-sha-256", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync", "--no-instructions"],
                       component="postgres-primary", log=plog, user=user, cwd=root, timeout=120)
    finally:
        pwfile.unlink(missing_ok=True)
    with open(primary / "postgresql.conf", "a") as f:
        f.write(SETTINGS + tls.SETTINGS)
    tls.write_server_certificate(primary, _own)  # pg_basebackup copies it to the replica
    ctx.check_cancel("postgres-primary")

    spawned = supervisor.spawn([str(bin_dir() / "postgres"), "-D", str(primary), "-p", str(pport)],
                               log=plog, user=user, cwd=root)
    ctx.record("postgres-primary", spawned, pport, plog, host=HOST, database=DATABASE, user=USER, role="primary",
               data_dir=str(primary))
    admin = conninfo(HOST, pport, pw, dbname="postgres")
    ctx.wait(lambda: bool(_query(admin, "SELECT 1")), component="postgres-primary", what="connection",
             timeout=60, log=plog, pid=spawned.pid)
    ctx.say("postgres-primary", f"ready on {HOST}:{pport}; loading schema and {ctx.size} sample rows")
    try:
        _query(admin, f"CREATE DATABASE {DATABASE}")
        rows = sample_data.load(conninfo(HOST, pport, pw), ctx.size)
    except Exception as exc:  # psycopg's errors: one line, and the server log
        raise supervisor.StartFailed("postgres-primary", f"loading the sample data failed: {exc}", plog) from None
    ctx.say("postgres-primary", f"loaded {rows} rows")
    ctx.check_cancel("postgres-replica")

    ctx.say("postgres-replica", "pg_basebackup")
    supervisor.run([str(bin_dir() / "pg_basebackup"), "-h", HOST, "-p", str(pport), "-U", USER, "-D", str(replica),
                    "-R", "-X", "stream", "-c", "fast", "--no-sync", "-w"],
                   component="postgres-replica", log=rlog, user=user, cwd=root, timeout=300,
                   env={**_base_env(), "PGPASSWORD": pw})
    spawned = supervisor.spawn([str(bin_dir() / "postgres"), "-D", str(replica), "-p", str(rport)],
                               log=rlog, user=user, cwd=root)
    ctx.record("postgres-replica", spawned, rport, rlog, host=HOST, database=DATABASE, user=USER, role="replica",
               primary_port=pport, data_dir=str(replica))
    ctx.wait(lambda: _query(conninfo(HOST, rport, pw), "SELECT pg_is_in_recovery()")[0][0] is True,
             component="postgres-replica", what="hot standby connection", timeout=60, log=rlog, pid=spawned.pid)
    ctx.wait(lambda: bool(_query(admin, "SELECT 1 FROM pg_stat_replication WHERE state = 'streaming'")),
             component="postgres-replica", what="streaming replication", timeout=30, log=rlog, pid=spawned.pid)
    ctx.say("postgres-replica", f"streaming on {HOST}:{rport}")


def restart(ctx: Context, dead: set[str]) -> None:
    """Start the stopped servers again over their own data directories, on their own ports.

    Nothing is re-created: the databases (and every backup's and drill's traces in them) are as they were.
    A replica whose primary was down catches up by streaming when both run.
    """
    root = ctx.state_dir / "postgres"
    pw = ctx.passwords["postgres"]
    for name in ("postgres-primary", "postgres-replica"):
        if name not in dead:
            continue
        role = name.removeprefix("postgres-")
        data, port, log = root / role, ctx.ports[name], ctx.log(name)
        old = ctx.state.component(name)
        spawned = supervisor.spawn([str(bin_dir() / "postgres"), "-D", str(data), "-p", str(port)],
                                   log=log, user=os_user(), cwd=root)
        ctx.record(name, spawned, port, log, **(old.info if old else {}))
        if role == "primary":
            ready = lambda: bool(_query(conninfo(HOST, port, pw, dbname="postgres"), "SELECT 1"))  # noqa: E731
        else:
            ready = lambda: _query(conninfo(HOST, port, pw), "SELECT pg_is_in_recovery()")[0][0] is True  # noqa: E731
        ctx.wait(ready, component=name, what="connection", timeout=60, log=log, pid=spawned.pid)
        ctx.say(name, f"restarted on {HOST}:{port}")
    if dead:
        admin = conninfo(HOST, ctx.ports["postgres-primary"], pw, dbname="postgres")
        ctx.wait(lambda: bool(_query(admin, "SELECT 1 FROM pg_stat_replication WHERE state = 'streaming'")),
                 component="postgres-replica", what="streaming replication", timeout=30,
                 log=ctx.log("postgres-replica"))


def _base_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("PG")} | {"LC_ALL": "C.UTF-8"}


def stop(component: Component) -> bool:
    """Fast shutdown (SIGINT): the postmaster ends its backends and exits."""
    return supervisor.stop(component.pid, component.start_time, pgid=component.pgid, sig=signal.SIGINT, timeout=20)
