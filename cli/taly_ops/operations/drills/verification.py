"""What a drill checks: the backup's files, the restored database against the manifest and the spec; the source's last write."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import Any

from ..backup import BACKUPS_PREFIX, iso
from ...environment import Environment
from ..steps import Progress


def source_last_write(env: Environment, restore_point: dt.datetime) -> dict[str, Any]:
    """When the source last committed, read (never written) on the endpoint backups dump from.

    `missed_seconds` is how much later than the restore point that was: the writes a restore of this
    backup would lose now (0 when the source has not written since). From pg_last_committed_xact()
    (track_commit_timestamp), else, on a standby, the last replayed commit; when neither has seen a
    commit since the server started, a start before the restore point still proves nothing was missed.
    None when it cannot tell or the source cannot be reached: the drill goes on, on the restore point's
    age alone.
    """
    from ...adapters import postgres as pgt
    from ...errors import Unreachable as _Unreachable

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


def download_verified(env: Environment, manifest: dict[str, Any], download: Path, progress: Progress,
                      only: set[str] | None = None) -> tuple[list[dict[str, Any]], bool]:
    """Download a logical backup's files (or only those named) and check each against the manifest's sha256.

    Returns (one entry per file: passed, and the problem when not; all passed). Used by drills and by
    `taly data refresh`; nothing may read a file before this has passed.
    """
    from ...adapters import postgres as pgt

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


def verify_database(conn, spec: dict[str, Any], ver: dict[str, Any], *, expected_schema: dict[str, Any] | None,
                    expected_tables: dict[str, Any] | None, schema_error: str | None = None) -> bool:
    """Check a restored database; fills ver's schema, tables, invariants and smoke; True when all passed.

    expected_schema is a schema_fingerprint() (a backup's manifest, or the source's current one; None when it
    could not be read, schema_error saying why); expected_tables a manifest's per-table rows and checksums,
    or None when there are none to compare (an RDS snapshot or point-in-time restore).
    """
    from ...adapters import postgres as pgt

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
        ver["invariants"].append(run_invariant(conn, inv))
    for q in spec.get("smoke", []):
        ver["smoke"].append(run_smoke(conn, q))
    return (ver["schema_passed"] and all(t["passed"] for t in ver["tables"])
            and all(i["passed"] for i in ver["invariants"]) and all(s["passed"] for s in ver["smoke"]))


def run_invariant(conn, inv: dict[str, Any]) -> dict[str, Any]:
    from ...adapters import postgres as pgt

    try:
        rows = pgt.run_check(conn, inv["sql"])
        row = rows[0] if rows else None
        violations = int(row[0]) if row and row[0] is not None else 0
        return {"name": inv["name"], "violations": violations, "passed": violations == 0}
    except Exception as exc:  # noqa: BLE001 - a broken query fails its check, with the reason
        return {"name": inv["name"], "violations": None, "passed": False, "error": str(exc).strip().splitlines()[0]}


def run_smoke(conn, q: dict[str, Any]) -> dict[str, Any]:
    from ...adapters import postgres as pgt

    lap = time.monotonic()
    try:
        rows = len(pgt.run_check(conn, q["sql"]))
        need = int(q.get("min_rows", 1))
        return {"name": q["name"], "rows": rows, "min_rows": need, "passed": rows >= need,
                "ms": round((time.monotonic() - lap) * 1000, 1)}
    except Exception as exc:  # noqa: BLE001
        return {"name": q["name"], "rows": None, "passed": False, "error": str(exc).strip().splitlines()[0]}
