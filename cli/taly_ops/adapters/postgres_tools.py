"""PostgreSQL client tools and queries for backups and drills: pg_dump, pg_restore, snapshots, fingerprints.

Passwords go to the tools through PGPASSWORD in their environment, never on a command line.
psycopg is imported inside the functions.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

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
        from psycopg.conninfo import make_conninfo  # quotes a password holding spaces or quotes

        return make_conninfo(host=self.host, port=self.port, dbname=dbname or self.database, user=self.user,
                             password=self.password, sslmode=self.sslmode, connect_timeout=5)

    def public(self) -> dict[str, Any]:
        return {"host": self.host, "port": self.port, "database": self.database, "user": self.user, "role": self.role}


def bin_dir() -> Path:
    from ..local.postgres import bin_dir as local_bin

    return local_bin()


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
