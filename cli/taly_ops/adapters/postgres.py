"""The PostgreSQL adapter: the one module that imports psycopg.

Connections (an Endpoint, or a conninfo string), identifier and statement composition (`sql`, from
psycopg.sql), the server errors callers tell apart (`errors`), the admin statements operations need
(databases: create, drop, rename, connections; snapshots; commit times), the backup and verification
queries (row counts and checksums, schema fingerprints) and the client tools (pg_dump, pg_restore).

Passwords go to the tools through PGPASSWORD in their environment, never on a command line.
psycopg is imported inside the functions (and on first use of `sql`/`errors`): `taly --help` stays fast.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ..errors import Unreachable

# Session settings that make row text deterministic, whatever the server's defaults.
SESSION = ("SET TimeZone = 'UTC'", "SET DateStyle = 'ISO, YMD'", "SET extra_float_digits = 3",
           "SET IntervalStyle = 'postgres'", "SET bytea_output = 'hex'")


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int
    user: str
    password: str
    database: str
    role: str = "primary"
    sslmode: str = "prefer"  # "require" for RDS (rds.force_ssl); the local estate speaks plain TCP on loopback

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def conninfo(self, dbname: str | None = None) -> str:
        return make_conninfo(host=self.host, port=self.port, dbname=dbname or self.database, user=self.user,
                             password=self.password, sslmode=self.sslmode, connect_timeout=5)

    def public(self) -> dict[str, Any]:
        return {"host": self.host, "port": self.port, "database": self.database, "user": self.user, "role": self.role}


BIN_ENV = "TALY_PG_BIN"
DEFAULT_BIN = Path("/usr/lib/postgresql/15/bin")


def bin_dir() -> Path:
    """Where PostgreSQL's programs are (the server, initdb, pg_dump, pg_restore): $TALY_PG_BIN or Debian's."""
    return Path(os.environ.get(BIN_ENV) or DEFAULT_BIN)


def _env(ep: Endpoint) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    return env | {"PGPASSWORD": ep.password, "PGSSLMODE": ep.sslmode, "LC_ALL": "C.UTF-8"}


def tool_versions() -> dict[str, str]:
    out = {}
    for tool in ("pg_dump", "pg_restore"):
        try:
            out[tool] = subprocess.run([str(bin_dir() / tool), "--version"], capture_output=True, text=True,
                                       timeout=10).stdout.strip()
        except OSError as exc:
            out[tool] = f"unavailable: {exc.strerror or exc}"
    return out


def _run(argv: list[str], ep: Endpoint, what: str, timeout: float, meanwhile: Callable[[], Any] | None = None) -> Any:
    """Run a client tool to completion; `meanwhile()` runs in this thread while it works, and its value is returned.

    The tool is killed if meanwhile() raises (an interrupted backup leaves no pg_dump behind).
    """
    try:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(ep),
                                stdin=subprocess.DEVNULL)
    except OSError as exc:
        raise Unreachable(f"cannot run {argv[0]}: {exc.strerror or exc}") from None
    result = None
    try:
        if meanwhile is not None:
            result = meanwhile()
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        raise Unreachable(f"{what} took longer than {timeout:.0f}s") from None
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    if proc.returncode != 0:
        tail = "\n".join((stderr or stdout).strip().splitlines()[-8:])
        raise ToolFailed(f"{what} exited with {proc.returncode}", tail)
    return result


class ToolFailed(Exception):
    def __init__(self, message: str, output: str) -> None:
        super().__init__(f"{message}: {output}")
        self.message, self.output = message, output

    @property
    def without_rows(self) -> str:
        """The tool's output without the server's DETAIL, CONTEXT and LINE lines: those quote row values
        (a duplicate key, the COPY line that failed), which must not reach reports or logs."""
        keep, dropping = [], False
        for line in self.output.splitlines():
            text = line.lstrip()
            if text.startswith(("DETAIL:", "CONTEXT:", "LINE ", "COPY ", "Command was:")):
                dropping = True
            elif dropping and not text.startswith(("pg_restore:", "pg_dump:", "ERROR:", "WARNING:", "HINT:")):
                pass  # a dropped message's next line: a quoted value with a newline in it
            else:
                dropping = False
                keep.append(line)
        return "\n".join(keep) or "(no message without row data)"


def pg_dump(ep: Endpoint, out_dir: Path, *, snapshot: str | None, jobs: int = 2, compress: int | None = None,
            timeout: float = 3600, meanwhile: Callable[[], Any] | None = None) -> Any:
    """pg_dump -Fd; compress is gzip's level (None: pg_dump's default, 6). Returns what meanwhile() returned."""
    argv = [str(bin_dir() / "pg_dump"), "-Fd", "-j", str(jobs), "-f", str(out_dir), "-h", ep.host, "-p", str(ep.port),
            "-U", ep.user, "-w", "--no-owner", "--no-privileges"]
    if compress is not None:
        argv += ["-Z", str(compress)]
    if snapshot:
        argv.append(f"--snapshot={snapshot}")
    return _run(argv + [ep.database], ep, "pg_dump", timeout, meanwhile)


def pg_restore(ep: Endpoint, dump_dir: Path, *, jobs: int = 2, timeout: float = 3600) -> None:
    argv = [str(bin_dir() / "pg_restore"), "-j", str(jobs), "-d", ep.database, "-h", ep.host, "-p", str(ep.port),
            "-U", ep.user, "-w", "--no-owner", "--no-privileges", "--exit-on-error", str(dump_dir)]
    _run(argv, ep, "pg_restore", timeout)


class _Lazy:
    """A psycopg submodule's names, imported on first use (psycopg.sql, psycopg.errors)."""

    def __init__(self, module: str, names: tuple[str, ...]) -> None:
        self._module, self._names = module, names

    def __getattr__(self, name: str) -> Any:
        if name not in self._names:
            raise AttributeError(name)
        import importlib

        return getattr(importlib.import_module(self._module), name)


# Composition of statements with quoted identifiers and literals: sql.SQL("... {}").format(sql.Identifier(x)).
sql = _Lazy("psycopg.sql", ("SQL", "Identifier", "Literal", "Composed", "Composable", "Placeholder"))
# The server errors callers tell apart.
errors = _Lazy("psycopg.errors", ("Error", "InsufficientPrivilege", "ObjectInUse", "OperationalError",
                                  "CheckViolation", "NotNullViolation", "UniqueViolation", "ForeignKeyViolation",
                                  "StringDataRightTruncation", "InvalidTextRepresentation"))


def make_conninfo(**params: Any) -> str:
    """A libpq connection string, every value quoted (a password may hold spaces or quotes)."""
    from psycopg.conninfo import make_conninfo as make

    return make(**params)


def connect_info(conninfo: str, autocommit: bool = True):
    """A connection from a conninfo string (psycopg's errors pass through: the caller words them)."""
    import psycopg

    return psycopg.connect(conninfo, autocommit=autocommit)


def query(conninfo: str, statement: str, params: tuple = ()) -> list[tuple]:
    """Run one statement on a short connection; its rows ([] for a statement that returns none)."""
    with connect_info(conninfo) as conn:
        cur = conn.execute(statement, params)
        return cur.fetchall() if cur.description else []


def connect(ep: Endpoint, dbname: str | None = None, autocommit: bool = True):
    import psycopg

    try:
        conn = psycopg.connect(ep.conninfo(dbname), autocommit=autocommit)
    except psycopg.OperationalError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise Unreachable(f"cannot connect to PostgreSQL at {ep.address} ({ep.role}): {first}") from None
    for sql in SESSION:
        conn.execute(sql)
    return conn


def tables(conn) -> list[str]:
    rows = conn.execute("""SELECT quote_ident(table_schema) || '.' || quote_ident(table_name)
                           FROM information_schema.tables
                           WHERE table_type = 'BASE TABLE' AND table_schema NOT IN ('pg_catalog', 'information_schema')
                           ORDER BY 1""").fetchall()
    return [r[0] for r in rows]


def table_stats(conn) -> dict[str, dict[str, Any]]:
    """Per table: row count and an order-independent checksum (sum of each row's md5 prefix, as numeric)."""
    out = {}
    for t in tables(conn):
        count, checksum = conn.execute(
            f"SELECT count(*), coalesce(sum(('x' || substr(md5(x::text), 1, 15))::bit(60)::bigint::numeric), 0)::text "
            f"FROM {t} x").fetchone()
        out[t] = {"rows": int(count), "checksum": f"sum-md5-60:{checksum}"}
    return out


def schema_fingerprint(conn) -> dict[str, Any]:
    """A sha256 over columns, constraints and indexes of every user table, and one per table."""
    cols = conn.execute("""SELECT table_schema || '.' || table_name, ordinal_position, column_name, data_type,
                                  coalesce(character_maximum_length::text, ''), is_nullable, coalesce(column_default, '')
                           FROM information_schema.columns
                           WHERE table_schema NOT IN ('pg_catalog', 'information_schema')
                           ORDER BY 1, 2""").fetchall()
    cons = conn.execute("""SELECT n.nspname || '.' || c.relname, k.contype::text, pg_get_constraintdef(k.oid)
                           FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid
                           JOIN pg_namespace n ON n.oid = c.relnamespace
                           WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
                           ORDER BY 1, 2, 3""").fetchall()
    idx = conn.execute("""SELECT schemaname || '.' || tablename, indexdef FROM pg_indexes
                          WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2""").fetchall()
    per_table: dict[str, list[str]] = {}
    for kind, rows in (("column", cols), ("constraint", cons), ("index", idx)):
        for row in rows:
            per_table.setdefault(row[0], []).append(kind + "|" + "|".join(str(v) for v in row[1:]))
    digests = {t: hashlib.sha256("\n".join(lines).encode()).hexdigest() for t, lines in sorted(per_table.items())}
    whole = hashlib.sha256("\n".join(f"{t} {d}" for t, d in digests.items()).encode()).hexdigest()
    return {"fingerprint": whole, "tables": digests}


def server_version(conn) -> str:
    return conn.execute("SHOW server_version").fetchone()[0]


def file_digests(root: Path, workers: int = 2) -> list[tuple[str, int, str]]:
    """(relative path, size, sha256) of every file under root, sorted; files hashed in parallel (hashlib frees the GIL)."""
    from concurrent.futures import ThreadPoolExecutor

    def digest(path: Path) -> tuple[str, int, str]:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        return str(path.relative_to(root)), path.stat().st_size, h.hexdigest()

    paths = sorted(p for p in root.rglob("*") if p.is_file())
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(digest, paths))


# --- admin statements (databases on a server) ----------------------------------------------------------

def database_exists(conn, name: str) -> bool:
    return bool(conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone())


def database_sizes(conn, names: list[str]) -> dict[str, int]:
    """{name: bytes} of those of names that exist."""
    return dict(conn.execute("SELECT datname, pg_database_size(datname) FROM pg_database WHERE datname = ANY(%s)",
                             (names,)).fetchall())


def create_database(conn, name: str) -> None:
    conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def drop_database(conn, name: str) -> None:
    """DROP DATABASE IF EXISTS ... WITH (FORCE): its sessions are terminated."""
    conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def rename_database(conn, old: str, new: str) -> None:
    """errors.ObjectInUse while old has sessions."""
    conn.execute(sql.SQL("ALTER DATABASE {} RENAME TO {}").format(sql.Identifier(old), sql.Identifier(new)))


def allow_connections(conn, name: str, allow: bool) -> None:
    """errors.InsufficientPrivilege unless we own the database."""
    conn.execute(sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS {}").format(
        sql.Identifier(name), sql.SQL("true" if allow else "false")))


def terminate_sessions(conn, name: str) -> int:
    """Terminate every other session on database name; how many there were."""
    return conn.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                        "WHERE datname = %s AND pid <> pg_backend_pid()", (name,)).fetchone()[0]


def count_rows(conn, schema_name: str, table: str) -> int:
    return conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(schema_name, table))).fetchone()[0]


# --- what drills and backups ask a source ---------------------------------------------------------------

@dataclass(frozen=True)
class CommitTimes:
    """What a server can tell about its last commit (all read-only)."""

    tracked: bool                 # track_commit_timestamp is on
    in_recovery: bool             # a standby
    last_committed: Any           # pg_last_committed_xact() (when tracked), else None
    last_replayed: Any            # on a standby: pg_last_xact_replay_timestamp()
    started_at: Any               # pg_postmaster_start_time()


def commit_times(conn) -> CommitTimes:
    tracked = conn.execute("SHOW track_commit_timestamp").fetchone()[0] == "on"
    in_recovery = conn.execute("SELECT pg_is_in_recovery()").fetchone()[0]
    committed = conn.execute("SELECT timestamp FROM pg_last_committed_xact()").fetchone()[0] if tracked else None
    replayed = conn.execute("SELECT pg_last_xact_replay_timestamp()").fetchone()[0] if in_recovery else None
    started_at = conn.execute("SELECT pg_postmaster_start_time()").fetchone()[0]
    return CommitTimes(tracked, in_recovery, committed, replayed, started_at)


@dataclass(frozen=True)
class ExportedSnapshot:
    id: str
    taken_at: Any
    in_recovery: bool
    last_replayed_commit_at: Any
    lsn: str
    replay_behind_receive: bool


def export_snapshot(conn) -> ExportedSnapshot:
    """Begin a REPEATABLE READ READ ONLY transaction on conn (autocommit off) and export its snapshot.

    The transaction must stay open until whoever imports the snapshot (pg_dump --snapshot) is done.
    """
    with conn.cursor() as cur:
        cur.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        cur.execute("SELECT pg_export_snapshot(), clock_timestamp(), pg_is_in_recovery(), "
                    "CASE WHEN pg_is_in_recovery() THEN pg_last_xact_replay_timestamp() END, "
                    "CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn()::text ELSE pg_current_wal_lsn()::text END, "
                    "CASE WHEN pg_is_in_recovery() THEN pg_last_wal_receive_lsn() IS DISTINCT FROM pg_last_wal_replay_lsn() "
                    "ELSE false END")
        return ExportedSnapshot(*cur.fetchone())


def run_check(conn, statement: str) -> list[tuple]:
    """A drill spec's query, in its own transaction (a failing one leaves the connection usable)."""
    with conn.transaction():
        return conn.execute(statement).fetchall()
