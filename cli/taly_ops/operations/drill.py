"""Restore drills: restore a backup into a fresh scratch instance, verify it, measure RPO and RTO.

RPO is the age of the backup's snapshot when the drill starts; RTO is the time from the drill's
start to a verified restore. The scratch instance is registered (drills/registry.json in the state
dir) before it starts and is always torn down (success, failure, Ctrl-C, SIGTERM) unless --keep;
`reap` removes what a killed drill left behind. Reports go to drills/<drill_id>.json in the bucket.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import secrets
import shutil
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from pydantic import BaseModel, ConfigDict, Field

from ..errors import BadInput, Interrupted, TalyError, Unreachable
from . import manifest as manifest_model
from .backup import BACKUPS_PREFIX, DRILLS_PREFIX, Environment, iso, now

Progress = Callable[[str], None]
DRILLS_DIR = "drills"
REGISTRY = "registry.json"
SPEC = Path("runbooks") / "drills" / "cms.yaml"
MIN_PORT = 1024  # the scratch server runs unprivileged
SCRATCH_PREFIXES = ("drill-", "refresh-")  # scratch instances in the registry: drills and `taly data refresh`


SPEC_SHAPE = "a mapping with invariants: [{name, sql}] and smoke: [{name, sql, min_rows}]"


class _Query(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1)
    sql: str = Field(min_length=1)


class SmokeQuery(_Query):
    min_rows: int = Field(1, ge=0)


class DrillSpec(BaseModel):
    """runbooks/drills/*.yaml: invariants (SQL returning one count of violations) and smoke queries."""

    model_config = ConfigDict(extra="allow")
    name: str | None = None
    database: str | None = None
    invariants: list[_Query] = []
    smoke: list[SmokeQuery] = []


def _noop(line: str) -> None:
    pass


# --- registry ---------------------------------------------------------------------------------------

def _drills_dir(env: Environment) -> Path:
    d = env.state_dir / DRILLS_DIR
    d.mkdir(parents=True, exist_ok=True)
    os.chmod(d, 0o711)  # the server's OS user must enter it
    return d


@contextlib.contextmanager
def _registry(env: Environment) -> Iterator[dict[str, Any]]:
    """The registry, locked; written back on exit."""
    import fcntl

    d = _drills_dir(env)
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
    with _registry(env) as reg:
        return dict(reg["drills"])


# --- signals ----------------------------------------------------------------------------------------

@contextlib.contextmanager
def _signals_raise() -> Iterator[dict[str, bool]]:
    """Make SIGTERM/SIGINT raise Interrupted (once); afterwards `flags["shielded"] = True` ignores them."""
    flags = {"shielded": False, "fired": False}
    if threading.current_thread() is not threading.main_thread():
        yield flags
        return

    def handler(signum, frame):
        if flags["shielded"] or flags["fired"]:
            return  # tearing down: let the cleanup finish
        flags["fired"] = True
        raise Interrupted(signum)

    # SIGHUP too: a dropped SSH session must not leave a scratch instance behind. A signal the caller
    # ignores (`nohup` ignores SIGHUP; a shell's background jobs SIGINT) stays ignored.
    previous = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
                if signal.getsignal(s) is not signal.SIG_IGN}
    try:
        yield flags
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


@dataclass
class Guarded:
    """How guarded work ended: interrupted by a signal, or a BadInput/Unreachable kept for after the report."""

    interrupted: Interrupted | None = None
    raise_after: TalyError | None = None

    def reraise(self) -> None:
        if self.interrupted is not None:
            raise self.interrupted
        if self.raise_after is not None:
            raise self.raise_after


def describe_error(exc: Exception) -> str:
    """An unexpected error as one line; PostgreSQL's primary message only (its DETAIL can quote a row)."""
    if hasattr(exc, "sqlstate"):
        from ..datarefresh.anonymize import pg_message

        return f"{type(exc).__name__}: {pg_message(exc)}"
    return f"{type(exc).__name__}: {exc}"


def run_guarded(work: Callable[[dict[str, bool]], None], clean_up: Callable[[Guarded], dict[str, Any]],
                report: dict[str, Any], label: str, progress: Progress) -> Guarded:
    """Run work(flags); then, whatever happened (an error, SIGTERM, SIGHUP, Ctrl-C), clean_up with signals shielded.

    Every scratch copy (a drill's PostgreSQL or RDS instance, a refresh's) is made inside work and
    removed by clean_up, whose result is report["cleanup"]. Errors become report["error"]: a failed
    run is a report, not a traceback. The interruption and BadInput/Unreachable (exit 2/3) are kept
    in the result, for the caller to re-raise once it has reported.
    """
    outcome = Guarded()
    with _signals_raise() as flags:
        try:
            try:
                work(flags)
            except Interrupted as exc:
                outcome.interrupted = exc
                report["error"] = f"interrupted by {exc}"
                progress(f"{label}: interrupted by {exc}; cleaning up")
            except (BadInput, Unreachable) as exc:
                outcome.raise_after = exc
                report["error"] = exc.message
            except Exception as exc:  # noqa: BLE001 - see the docstring
                report["error"] = describe_error(exc)
        finally:
            flags["shielded"] = True
            report["cleanup"] = clean_up(outcome)
    return outcome


# --- spec -------------------------------------------------------------------------------------------

def load_spec(path: Path) -> dict[str, Any]:
    """The drill spec in path, validated (DrillSpec); BadInput (exit 2) naming the file and what is wrong."""
    from pydantic import ValidationError
    from taly_platform.safe_yaml import YamlError, load_file

    try:
        spec = load_file(path)
    except YamlError as exc:
        raise BadInput(f"cannot read the drill spec {exc}") from None
    if not isinstance(spec, dict):
        raise BadInput(f"{path} is not a drill spec: {SPEC_SHAPE}")
    try:
        return DrillSpec.model_validate(spec).model_dump(exclude_none=True)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        got = f" (got {manifest_model.shorten(err['input'])})" if err["type"] != "missing" else ""
        raise BadInput(f"{path}: {where}: {err['msg']}{got}", hint=f"a drill spec is {SPEC_SHAPE}") from None


# --- the source's last write -----------------------------------------------------------------------

def source_last_write(env: Environment, restore_point: dt.datetime) -> dict[str, Any]:
    """When the source last committed, read (never written) on the endpoint backups dump from.

    `missed_seconds` is how much later than the restore point that was: the writes a restore of this
    backup would lose now (0 when the source has not written since). From pg_last_committed_xact()
    (track_commit_timestamp), else, on a standby, the last replayed commit; when neither has seen a
    commit since the server started, a start before the restore point still proves nothing was missed.
    None when it cannot tell or the source cannot be reached: the drill goes on, on the restore point's
    age alone.
    """
    from ..adapters import postgres as pgt
    from ..errors import Unreachable as _Unreachable

    out: dict[str, Any] = {"at": None, "missed_seconds": None, "endpoint": env.source.address, "how": None,
                           "error": None}
    try:
        with pgt.connect(env.source) as conn:
            times = pgt.commit_times(conn)
    except _Unreachable as exc:
        out["error"] = exc.message
        return out
    except Exception as exc:  # noqa: BLE001 - the source's view is extra information, never the drill's verdict
        out["error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        return out
    tracked, in_recovery, started_at = times.tracked, times.in_recovery, times.started_at
    at, how = times.last_committed, "pg_last_committed_xact()"
    if at is None and in_recovery:
        at, how = times.last_replayed, "pg_last_xact_replay_timestamp()"
    if at is not None:
        out.update(at=iso(at), how=how, missed_seconds=round(max(0.0, (at - restore_point).total_seconds()), 1))
    elif not (tracked or in_recovery):
        # A primary without track_commit_timestamp: no NULL above proves anything about its commits.
        out["how"] = "track_commit_timestamp is off on the source (a primary): unknown"
    elif started_at <= restore_point:
        # Nothing committed (or replayed) since the server started, and it started before the restore point.
        out.update(how=f"no commit since the source started at {iso(started_at)}", missed_seconds=0.0)
    else:
        out["how"] = f"no commit since the source started at {iso(started_at)}, after the restore point: unknown"
    return out


# --- the drill --------------------------------------------------------------------------------------

def restore(env: Environment, backup: str = "latest", *, keep: bool = False, port: int | None = None,
            spec_path: Path | None = None, progress: Progress = _noop) -> dict[str, Any]:
    """Run one drill; returns its report (status passed|failed).

    BadInput/Unreachable (exit 2/3) are raised before anything starts, or, when they happen during the
    drill, after the teardown and the report. Interrupted (SIGTERM/SIGINT) likewise, after the teardown.
    """
    from .. import audit
    from ..local import supervisor
    from ..project import project_root
    from . import backup as backup_ops

    if port is not None and not MIN_PORT <= port <= 65535:
        raise BadInput(f"--port {port}: a scratch PostgreSQL listens on {MIN_PORT}-65535")
    t0 = time.monotonic()
    started = now()
    spec_path = spec_path or project_root() / SPEC
    spec = load_spec(spec_path)
    manifest = backup_ops.manifest(env, backup)  # exit 3 without a bucket, 2 for an unknown id
    backup_id = manifest["backup_id"]
    drill_id = f"drill-{started.strftime('%Y%m%dT%H%M%SZ')}-{secrets.token_hex(3)}"
    host = "127.0.0.1"
    if port is not None and (host, port) in env.source_addresses():
        raise BadInput(f"the drill target 127.0.0.1:{port} is a source endpoint of {env.name}; refusing to restore over it")
    if port is not None and supervisor.port_open(port):
        raise BadInput(f"port {port} is in use; the drill needs a free port for its scratch instance")
    port = port or supervisor.free_port()
    if (host, port) in env.source_addresses():  # a free port cannot be a running source, but be certain
        raise BadInput(f"the drill target {host}:{port} is a source endpoint of {env.name}")

    check_scratch_dir(env)

    snapshot_at = dt.datetime.fromisoformat(manifest["snapshot"]["at"])
    rpo_seconds = (started - snapshot_at).total_seconds()
    last_write = source_last_write(env, snapshot_at)
    report: dict[str, Any] = {
        "drill_id": drill_id, "environment": env.name, "status": "failed", "backup_id": backup_id,
        "restore_point_kind": "logical", "restore_point": manifest["snapshot"]["at"], "started_at": iso(started),
        "finished_at": None,
        "source": manifest["source"], "target": {"name": drill_id, "host": host, "port": port, "kind": "scratch postgres"},
        "rpo_seconds": round(rpo_seconds, 1), "rto_seconds": None, "source_last_write": last_write,
        "targets": {"rpo_seconds": env.targets["rpo_minutes"] * 60, "rto_seconds": env.targets["rto_minutes"] * 60,
                    "source": env.targets.get("source"), "rpo_met": None, "rto_met": None},
        "timings": {}, "spec": str(spec_path),
        "verification": {"files": [], "files_passed": False, "schema_passed": None, "schema": {}, "tables": [],
                         "invariants": [], "smoke": [], "passed": False},
        "cleanup": {}, "error": None,
    }
    inputs = {"from": backup, "backup_id": backup_id, "keep": keep, "port": port, "spec": str(spec_path)}
    root = _drills_dir(env) / drill_id
    register_scratch(env, drill_id, backup_id=backup_id, root=root, port=port, keep=keep)
    audit.record(env.state_dir, "drill.restore.start", env.name, inputs=inputs, outcome="started",
                 before={"registry": "registered"}, after={"drill_id": drill_id, "target": report["target"]})
    progress(f"drill {drill_id}: restoring backup {backup_id} (restore point {manifest['snapshot']['at']}, "
             f"RPO {rpo_seconds:.0f}s) into a scratch instance on {host}:{port}")
    spawned: dict[str, Any] = {}  # the instance as soon as it is spawned, should the registry miss it
    outcome = run_guarded(
        lambda flags: _run(env, manifest, spec, root, port, drill_id, report, t0, progress, spawned),
        lambda o: _teardown(env, drill_id, keep and o.interrupted is None, progress, spawned),
        report, f"drill {drill_id}", progress)
    finish(env, report, t0=t0, inputs=inputs, interrupted=outcome.interrupted is not None, progress=progress,
           before={"backup_id": backup_id, "restore_point": report["restore_point"]})
    outcome.reraise()
    return report


def finish(env: Environment, report: dict[str, Any], *, t0: float, inputs: dict[str, Any], before: dict[str, Any],
           interrupted: bool, progress: Progress) -> None:
    """The verdict (verification, RPO and RTO against their targets), then the report to the bucket and the audit log."""
    from .. import audit

    report["timings"]["total_seconds"] = round(time.monotonic() - t0, 2)
    report["finished_at"] = iso(now())
    ver = report["verification"]
    tg = report["targets"]
    tg["rpo_met"] = report["rpo_seconds"] is not None and report["rpo_seconds"] <= tg["rpo_seconds"]
    # Not measured (the drill stopped before a verified restore): None, not "missed".
    tg["rto_met"] = None if report["rto_seconds"] is None else report["rto_seconds"] <= tg["rto_seconds"]
    passed = bool(ver["passed"] and tg["rpo_met"] and tg["rto_met"]) and not report["error"]
    report["status"] = "passed" if passed else "failed"
    if report["cleanup"].get("kept"):
        report["cleanup"].setdefault("remove_with", f"taly drill reap --env {env.name}")
    drill_id = report["drill_id"]
    try:
        env.store.put_json(f"{DRILLS_PREFIX}{drill_id}.json", report)
        report["report_key"] = f"s3://{env.store.bucket}/{DRILLS_PREFIX}{drill_id}.json"
    except (Unreachable, KeyError) as exc:
        report["report_key"] = None
        progress(f"warning: the drill report could not be stored in the bucket: {exc}")
    audit.record(env.state_dir, "drill.restore", env.name, inputs=inputs,
                 outcome="interrupted" if interrupted else report["status"], before=before,
                 after={"drill_id": drill_id, "rpo_seconds": report["rpo_seconds"], "rto_seconds": report["rto_seconds"],
                        "cleanup": report["cleanup"], "report": report.get("report_key")},
                 detail={"error": report["error"]} if report["error"] else None)


def _run(env: Environment, manifest: dict[str, Any], spec: dict[str, Any], root: Path, port: int, drill_id: str,
         report: dict[str, Any], t0: float, progress: Progress, spawned_out: dict[str, Any]):
    from ..adapters import postgres as pgt
    from ..local import scratch_postgres
    from ..local.context import USER

    timings = report["timings"]
    ver = report["verification"]
    lap = time.monotonic()

    def say(msg: str) -> None:
        progress(f"{time.monotonic() - t0:5.1f}s  {msg}")

    scratch = scratch_postgres.prepare(root, port)
    # 1. Download, and check every file against the manifest before anything reads it.
    download = root / "download"
    download.mkdir(mode=0o700)
    say(f"downloading {len(manifest['files'])} files ({manifest['total_bytes']:,} bytes)")
    ver["files"], ver["files_passed"] = download_verified(env, manifest, download, progress)
    timings["download_seconds"] = round(time.monotonic() - lap, 2)
    if not ver["files_passed"]:
        bad = ", ".join(f"{e['file']} ({e['problem']})" for e in ver["files"] if not e["passed"])
        say(f"integrity check failed: {bad}; not restoring")
        report["error"] = f"backup files do not match the manifest: {bad}"
        return scratch

    # 2. A fresh instance, registered before it starts.
    lap = time.monotonic()
    say(f"initdb and start the scratch instance {drill_id} on 127.0.0.1:{port}")
    start_scratch(env, drill_id, scratch, spawned_out)
    target = pgt.Endpoint("127.0.0.1", port, USER, scratch.password, manifest["source"]["database"], "drill")
    if target.address in {f"{h}:{p}" for h, p in env.source_addresses()}:
        raise BadInput(f"the drill target {target.address} is a source endpoint")  # never restore over a source
    with pgt.connect(target, dbname="postgres") as admin:
        pgt.create_database(admin, target.database)
    timings["instance_seconds"] = round(time.monotonic() - lap, 2)

    # 3. Restore. (TALY_DRILL_HOLD_SECONDS pauses here, with the instance up: for tests of the teardown.)
    if hold := float(os.environ.get("TALY_DRILL_HOLD_SECONDS") or 0):
        say(f"holding {hold:g}s before the restore (TALY_DRILL_HOLD_SECONDS)")
        time.sleep(hold)
    lap = time.monotonic()
    say(f"pg_restore -j 2 into {target.address}/{target.database}")
    try:
        pgt.pg_restore(target, download)
    except pgt.ToolFailed as exc:
        report["error"] = f"pg_restore failed: {exc.without_rows}"
        timings["restore_seconds"] = round(time.monotonic() - lap, 2)
        return scratch
    timings["restore_seconds"] = round(time.monotonic() - lap, 2)

    # 4. Verify against the manifest and the spec.
    lap = time.monotonic()
    say("verifying schema, row counts, checksums, invariants and smoke queries")
    with pgt.connect(target) as conn:
        checks_passed = verify_database(conn, spec, ver, expected_schema=manifest["schema"],
                                        expected_tables=manifest["tables"])
    ver["passed"] = ver["files_passed"] and checks_passed
    timings["verify_seconds"] = round(time.monotonic() - lap, 2)
    report["rto_seconds"] = round(time.monotonic() - t0, 2)
    say(f"verification {'passed' if ver['passed'] else 'FAILED'}; RTO {report['rto_seconds']:.1f}s")
    return scratch


def download_verified(env: Environment, manifest: dict[str, Any], download: Path, progress: Progress,
                      only: set[str] | None = None) -> tuple[list[dict[str, Any]], bool]:
    """Download a logical backup's files (or only those named) and check each against the manifest's sha256.

    Returns (one entry per file: passed, and the problem when not; all passed). Used by drills and by
    `taly data refresh`; nothing may read a file before this has passed.
    """
    from ..adapters import postgres as pgt

    files = [f for f in manifest["files"] if only is None or f["path"] in only]
    report: list[dict[str, Any]] = []
    for i, f in enumerate(files, 1):
        key = f"{BACKUPS_PREFIX}{manifest['backup_id']}/dump/{f['path']}"
        try:
            env.store.download_file(key, download / f["path"], progress=lambda line, i=i: progress(f"  [{i}/{len(files)}]{line}"),
                                    size=f["size"])
        except KeyError:
            report.append({"file": f["path"], "passed": False, "problem": "missing from the bucket"})
    got = {p: (size, digest) for p, size, digest in pgt.file_digests(download)}
    for f in files:
        if f["path"] not in got:
            continue
        size, digest = got[f["path"]]
        ok = size == f["size"] and digest == f["sha256"]
        entry = {"file": f["path"], "passed": ok, "expected_sha256": f["sha256"], "sha256": digest,
                 "expected_size": f["size"], "size": size}
        if not ok:
            entry["problem"] = "sha256 mismatch" if size == f["size"] else "size mismatch"
        report.append(entry)
    return report, all(e["passed"] for e in report) and len(report) == len(files)


def check_scratch_dir(env: Environment) -> None:
    """BadInput (before anything starts) when a scratch PostgreSQL could not run in env's drills directory."""
    from ..local import postgres as local_pg

    where = env.state_dir / DRILLS_DIR
    problems = local_pg.preflight(where)
    if problems:
        raise BadInput(f"the scratch instance cannot run in {where}: {problems[0][0]}",
                       hint=problems[0][1] + ("" if env.is_local else
                                              f"; for {env.name}, point $TALY_STATE_DIR somewhere it can reach"))


def register_scratch(env: Environment, scratch_id: str, *, backup_id: str, root: Path, port: int,
                     keep: bool = False) -> None:
    """Record a scratch instance in the registry before anything starts (drills and data refreshes alike)."""
    from ..local import supervisor

    with _registry(env) as reg:
        reg["drills"][scratch_id] = {"drill_id": scratch_id, "backup_id": backup_id, "dir": str(root), "port": port,
                                     "owner_pid": os.getpid(), "owner_start_time": supervisor.start_time(os.getpid()),
                                     "pid": None, "start_time": None, "pgid": None, "keep": keep,
                                     "registered_at": iso(now())}


def start_scratch(env: Environment, scratch_id: str, scratch: Any, spawned_out: dict[str, Any]) -> None:
    """initdb and start a registered scratch instance; its pid reaches the registry before it is waited for."""
    from ..local import scratch_postgres

    scratch_postgres.initdb(scratch)
    spawned = scratch_postgres.spawn(scratch)
    spawned_out.update(pid=spawned.pid, start_time=spawned.start_time, pgid=spawned.pgid)
    with _registry(env) as reg:
        reg["drills"][scratch_id].update(pid=spawned.pid, start_time=spawned.start_time, pgid=spawned.pgid)
    scratch_postgres.wait_ready(scratch)


def verify_database(conn, spec: dict[str, Any], ver: dict[str, Any], *, expected_schema: dict[str, Any] | None,
                    expected_tables: dict[str, Any] | None, schema_error: str | None = None) -> bool:
    """Check a restored database; fills ver's schema, tables, invariants and smoke; True when all passed.

    expected_schema is a schema_fingerprint() (a backup's manifest, or the source's current one; None when it
    could not be read, schema_error saying why); expected_tables a manifest's per-table rows and checksums,
    or None when there are none to compare (an RDS snapshot or point-in-time restore).
    """
    from ..adapters import postgres as pgt

    schema = pgt.schema_fingerprint(conn)
    expected = expected_schema or {"fingerprint": None, "tables": {}}
    differ = sorted(t for t in set(schema["tables"]) | set(expected["tables"])
                    if schema["tables"].get(t) != expected["tables"].get(t)) if expected_schema else []
    ver["schema_passed"] = expected_schema is not None and schema["fingerprint"] == expected["fingerprint"]
    ver["schema"] = {"expected_fingerprint": expected["fingerprint"], "fingerprint": schema["fingerprint"],
                     "differing_tables": differ}
    if expected_schema is None:
        ver["schema"]["error"] = schema_error or "no expected schema"
    if expected_tables is not None:
        stats = pgt.table_stats(conn)
        for table in sorted(set(stats) | set(expected_tables)):
            exp, got_t = expected_tables.get(table, {}), stats.get(table, {})
            ver["tables"].append({"table": table, "expected_rows": exp.get("rows"), "rows": got_t.get("rows"),
                                  "expected_checksum": exp.get("checksum"), "checksum": got_t.get("checksum"),
                                  "passed": bool(exp) and exp.get("rows") == got_t.get("rows")
                                  and exp.get("checksum") == got_t.get("checksum")})
    for inv in spec.get("invariants", []):
        ver["invariants"].append(_invariant(conn, inv))
    for q in spec.get("smoke", []):
        ver["smoke"].append(_smoke(conn, q))
    return (ver["schema_passed"] and all(t["passed"] for t in ver["tables"])
            and all(i["passed"] for i in ver["invariants"]) and all(s["passed"] for s in ver["smoke"]))


def _invariant(conn, inv: dict[str, Any]) -> dict[str, Any]:
    from ..adapters import postgres as pgt

    try:
        rows = pgt.run_check(conn, inv["sql"])
        row = rows[0] if rows else None
        violations = int(row[0]) if row and row[0] is not None else 0
        return {"name": inv["name"], "violations": violations, "passed": violations == 0}
    except Exception as exc:  # noqa: BLE001 - a broken query fails its check, with the reason
        return {"name": inv["name"], "violations": None, "passed": False, "error": str(exc).strip().splitlines()[0]}


def _smoke(conn, q: dict[str, Any]) -> dict[str, Any]:
    from ..adapters import postgres as pgt

    lap = time.monotonic()
    try:
        rows = len(pgt.run_check(conn, q["sql"]))
        need = int(q.get("min_rows", 1))
        return {"name": q["name"], "rows": rows, "min_rows": need, "passed": rows >= need,
                "ms": round((time.monotonic() - lap) * 1000, 1)}
    except Exception as exc:  # noqa: BLE001
        return {"name": q["name"], "rows": None, "passed": False, "error": str(exc).strip().splitlines()[0]}


# --- teardown and reap ------------------------------------------------------------------------------

def _remove(entry: dict[str, Any]) -> dict[str, Any]:
    """Stop the entry's instance (if it still is the recorded process) and delete its directory."""
    from ..local import scratch_postgres, supervisor

    d = Path(entry["dir"])
    pid, started, pgid = entry.get("pid"), entry.get("start_time"), entry.get("pgid")
    if not supervisor.alive(pid, started):
        # Not recorded (killed between spawn and registering) or gone: ask the data directory.
        pid = _postmaster(d / "data")
        started, pgid = (supervisor.start_time(pid), supervisor.pgid_of(pid)) if pid else (None, None)
    was_running = supervisor.alive(pid, started)
    forced = scratch_postgres.stop(pid, started, pgid) if was_running else False
    stopped = not supervisor.alive(pid, started)
    shutil.rmtree(d, ignore_errors=True)
    return {"instance_was_running": was_running, "instance_stopped": stopped, "killed": forced,
            "dir_removed": not d.exists()}


def _postmaster(data_dir: Path) -> int | None:
    """The pid in data_dir/postmaster.pid if that process is a postgres serving data_dir."""
    try:
        pid = int((data_dir / "postmaster.pid").read_text().split("\n", 1)[0])
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (OSError, ValueError):
        return None
    return pid if str(data_dir).encode() in cmdline and cmdline[0].endswith(b"postgres") else None


def _teardown(env: Environment, drill_id: str, keep: bool, progress: Progress,
              spawned: dict[str, Any] | None = None) -> dict[str, Any]:
    with _registry(env) as reg:
        entry = reg["drills"].get(drill_id)
        if entry is None:
            return {"kept": False, "instance_stopped": True, "dir_removed": True}
        if spawned and not entry.get("pid"):  # interrupted before the registry heard of it
            entry.update(spawned)
        if keep and entry.get("pid"):  # nothing to keep when no instance was started
            entry["owner_pid"] = None  # nobody owns it now: `reap` may remove it
            progress(f"kept {drill_id}: postgresql://taly@127.0.0.1:{entry['port']}/ (data in {entry['dir']}); "
                     f"remove it with `taly drill reap --env {env.name}`")
            return {"kept": True, "instance_stopped": False, "dir_removed": False, "port": entry["port"],
                    "dir": entry["dir"]}
        result = _remove(entry)
        if result["instance_stopped"] and result["dir_removed"]:
            del reg["drills"][drill_id]
        progress(f"scratch instance {drill_id} removed" if result["dir_removed"] else
                 f"warning: could not fully remove {drill_id}: {result}")
        return {"kept": False, **result}


@dataclass(frozen=True)
class ScratchHost:
    """Where this machine keeps an environment's scratch instances: all that reaping them needs (no estate, no bucket)."""

    name: str
    state_dir: Path


def reap(env: Environment | ScratchHost, older_than_hours: float = 0.0, progress: Progress = _noop) -> dict[str, Any]:
    """Remove drill leftovers: registry entries whose owner is gone, older than the given age.

    Needs only the registry in env.state_dir: it works whether or not the estate (or the bucket) is up.
    """
    from .. import audit
    from ..local import supervisor

    result: dict[str, Any] = {"environment": env.name, "reaped": [], "skipped": [], "unregistered_dirs": []}
    cutoff = now() - dt.timedelta(hours=older_than_hours)
    reaped, skipped = result["reaped"], result["skipped"]
    with _registry(env) as reg:
        for drill_id, entry in list(reg["drills"].items()):
            registered = dt.datetime.fromisoformat(entry["registered_at"])
            if registered > cutoff:
                skipped.append({"drill_id": drill_id, "reason": f"younger than {older_than_hours:g}h"})
                continue
            if entry.get("owner_pid") and supervisor.alive(entry["owner_pid"], entry.get("owner_start_time")):
                skipped.append({"drill_id": drill_id, "owner_pid": entry["owner_pid"],
                                "reason": f"its drill (pid {entry['owner_pid']}) is still running"})
                continue
            running = supervisor.alive(entry.get("pid"), entry.get("start_time"))
            exists = Path(entry["dir"]).exists()
            removed = _remove(entry) if (running or exists) else {"instance_was_running": False, "dir_removed": True}
            del reg["drills"][drill_id]
            if running or exists:
                reaped.append({"drill_id": drill_id, "port": entry.get("port"), "dir": entry["dir"], **removed})
                progress(f"reaped {drill_id} (instance {'stopped' if running else 'not running'}, dir removed)")
    # Directories no registry entry knows of (a drill killed between mkdir and registering cannot happen,
    # but a hand-deleted registry can): listed, not deleted.
    known = set(registry_entries(env))
    result["unregistered_dirs"] = sorted(str(p) for p in (env.state_dir / DRILLS_DIR).iterdir()
                                         if p.is_dir() and p.name.startswith(SCRATCH_PREFIXES) and p.name not in known)
    audit.record(env.state_dir, "drill.reap", env.name, inputs={"older_than_hours": older_than_hours},
                 outcome="ok", after={"reaped": [r["drill_id"] for r in reaped]})
    return result


def reap_environment(env_name: str, state_dir: Path | None = None, *, older_than_hours: float = 0.0,
                     force: bool = False, progress: Progress = _noop) -> dict[str, Any]:
    """`taly drill reap`: local needs only the drill registry (the estate may be down); dev/staging/prod also RDS."""
    from ..environment import LOCAL, check_name, resolve

    if check_name(env_name) == LOCAL:
        from ..local.state import resolve_state_dir

        return reap(ScratchHost("local", resolve_state_dir(state_dir)), older_than_hours, progress=progress)
    from . import rds_drill

    return rds_drill.reap(resolve(env_name, state_dir), older_than_hours, progress=progress, force=force)


def reap_before_down(state_dir: Path, progress: Progress = _noop) -> dict[str, Any]:
    """What `taly local down` does first: remove the estate's drill leftovers, and say what it must leave.

    A drill still running keeps its scratch instance (it tears it down itself when it fails for want of
    the estate); the caller is told which, and how to remove them should that drill be killed.
    """
    if not (state_dir / DRILLS_DIR).is_dir():
        return {"environment": "local", "reaped": [], "skipped": [], "unregistered_dirs": []}  # no drill ever ran
    result = reap(ScratchHost("local", state_dir), progress=progress)
    for s in result["skipped"]:
        if s.get("owner_pid"):
            progress(f"left {s['drill_id']}: its drill (pid {s['owner_pid']}) is still running and removes its "
                     f"scratch instance when it ends; if it is killed: taly drill reap --env local "
                     f"--state-dir {state_dir}")
    return result


# --- history ----------------------------------------------------------------------------------------

def history(env: Environment) -> list[dict[str, Any]]:
    """Past drills from the reports in the bucket, oldest first; a report that cannot be read is listed as damaged."""
    env.store.check()
    out = []
    for obj in env.store.keys(DRILLS_PREFIX):
        key = obj.get("Key", "")
        if not key.endswith(".json"):
            continue
        try:
            r = env.store.get_json(key)
        except KeyError:
            continue
        except ValueError as exc:
            r = {"error": f"s3://{env.store.bucket}/{key}: {manifest_model.not_json(exc)}"}
        if not isinstance(r, dict):
            r = {"error": f"s3://{env.store.bucket}/{key}: not a JSON object"}
        damaged = "drill_id" not in r
        out.append({"drill_id": _text(r.get("drill_id")) or key.removeprefix(DRILLS_PREFIX).removesuffix(".json"),
                    "backup_id": _text(r.get("backup_id")), "status": "damaged" if damaged else _text(r.get("status")),
                    "restore_point_kind": _text(r.get("restore_point_kind")) or "logical",
                    "restore_point": _text(r.get("restore_point")), "started_at": _text(r.get("started_at")),
                    "rpo_seconds": _number(r.get("rpo_seconds")), "rto_seconds": _number(r.get("rto_seconds")),
                    "targets": r.get("targets") if isinstance(r.get("targets"), dict) else None,
                    "verification_passed": (r.get("verification") or {}).get("passed")
                    if isinstance(r.get("verification"), dict) else None,
                    "error": _text(r.get("error"))})
    return sorted(out, key=lambda r: r["started_at"] or "")


def _text(value: Any) -> str | None:
    return None if value is None else str(value)[:300]


def _number(value: Any) -> float | None:
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None


# --- JUnit ------------------------------------------------------------------------------------------

def junit_xml(report: dict[str, Any]) -> bytes:
    """The verification as JUnit XML: a check that did not run (the drill stopped first) is skipped, not failed."""
    import xml.etree.ElementTree as ET

    cases: list[tuple[str, str, bool | None, str]] = []  # (classname, name, passed or None: not run, message)
    ver = report["verification"]
    stopped = f"not run: the drill stopped first ({report['error']})" if report.get("error") else "not run"
    for f in ver["files"]:
        cases.append(("files", f["file"], f["passed"], f.get("problem", "")))
    schema = ver["schema"]
    if "fingerprint" not in schema:
        cases.append(("schema", "schema fingerprint", None, stopped))
    else:
        cases.append(("schema", "schema fingerprint", bool(ver["schema_passed"]), schema.get("error") or
                      f"differing tables: {', '.join(schema.get('differing_tables') or []) or 'none named'}"))
    for t in ver["tables"]:
        cases.append(("tables", t["table"], t["passed"], f"rows {t['rows']} (expected {t['expected_rows']}), "
                                                         f"checksum {t['checksum']} (expected {t['expected_checksum']})"))
    for i in ver["invariants"]:
        cases.append(("invariants", i["name"], i["passed"], i.get("error") or f"{i['violations']} violations"))
    for s in ver["smoke"]:
        cases.append(("smoke", s["name"], s["passed"], s.get("error") or f"{s['rows']} rows, need {s.get('min_rows')}"))
    tg = report["targets"]
    cases.append(("targets", "rpo", bool(tg["rpo_met"]), f"RPO {report['rpo_seconds']}s > target {tg['rpo_seconds']}s"))
    rto_measured = report["rto_seconds"] is not None
    cases.append(("targets", "rto", bool(tg["rto_met"]) if rto_measured else None,
                  f"RTO {report['rto_seconds']}s > target {tg['rto_seconds']}s" if rto_measured else
                  f"RTO not measured: {stopped}"))
    if report.get("error"):
        cases.append(("drill", "completed", False, report["error"]))
    failures = sum(1 for c in cases if c[2] is False)
    skipped = sum(1 for c in cases if c[2] is None)
    suite = ET.Element("testsuite", name=f"taly.drill.{report['environment']}", tests=str(len(cases)),
                       failures=str(failures), errors="0", skipped=str(skipped),
                       time=str(report["timings"].get("total_seconds", 0)), timestamp=report["started_at"])
    props = ET.SubElement(suite, "properties")
    for k in ("drill_id", "backup_id", "restore_point_kind", "restore_point", "rpo_seconds", "rto_seconds", "status"):
        if report.get(k) is not None:
            ET.SubElement(props, "property", name=k, value=str(report[k]))
    for classname, name, passed, message in cases:
        case = ET.SubElement(suite, "testcase", classname=f"drill.{classname}", name=name)
        if passed is False:
            ET.SubElement(case, "failure", message=message).text = message
        elif passed is None:
            ET.SubElement(case, "skipped", message=message)
    return ET.tostring(ET.ElementTree(suite).getroot(), encoding="utf-8", xml_declaration=True)
