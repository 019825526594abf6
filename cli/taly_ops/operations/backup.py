"""Logical backups: pg_dump from a consistent snapshot of the replica, a manifest, and the backups bucket.

The snapshot is exported (pg_export_snapshot, which PostgreSQL 15 allows on a hot standby) from a
REPEATABLE READ transaction on the replica; the row counts, content checksums and schema fingerprint
are computed in that same transaction while pg_dump dumps that same snapshot (--snapshot), so the
manifest describes exactly what the dump holds. The primary (the write endpoint) is only used when
the environment has no replica.

Layout in the bucket:  backups/<id>/manifest.json and backups/<id>/dump/<pg_dump -Fd files>.
"""

from __future__ import annotations

import datetime as dt
import secrets
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from ..environment import Environment, resolve
from ..errors import BadInput, Unreachable
from .steps import iso, now  # noqa: F401 - re-exported: backups and drills stamp times alike

Progress = Callable[[str], None]

if TYPE_CHECKING:
    from .reports import BackupReport, SnapshotReport
BACKUPS_PREFIX = "backups/"
DRILLS_PREFIX = "drills/"
MANIFEST = "manifest.json"
JOBS = 2
# gzip's fastest level: at 1M rows, -Z 1 dumps in 1.3 s against 3.1 s for pg_dump's default (-Z 6), for
# 40.6 MB against 32.9 MB. Restoring reads either at the same speed.
COMPRESS = 1


def _noop(line: str) -> None:
    pass


def new_backup_id(t: dt.datetime) -> str:
    return t.strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)


# --- create -----------------------------------------------------------------------------------------

def create(env: Environment, progress: Progress = _noop) -> dict[str, Any]:
    """Dump, fingerprint and upload one backup; returns its manifest.

    SIGTERM and SIGINT raise errors.Interrupted, so the local work directory is always removed; an
    interrupted backup has no manifest in the bucket and is never listed or restored.
    """
    from .steps import signals_raise

    with signals_raise():
        return _create(env, progress)


def _create(env: Environment, progress: Progress) -> dict[str, Any]:
    from .. import audit

    started = now()
    t0 = time.monotonic()
    backup_id = new_backup_id(started)
    inputs = {"source": env.source.public(), "bucket": env.store.bucket}
    try:
        env.store.check()
        work = env.state_dir / "backups-work" / backup_id
        dump_dir = work / "dump"
        work.mkdir(parents=True, mode=0o700)
        try:
            manifest = _dump(env, backup_id, dump_dir, started, progress)
            t_dump = time.monotonic() - t0
            progress(f"{time.monotonic() - t0:5.1f}s  uploading {len(manifest['files'])} files "
                     f"({manifest['total_bytes']:,} bytes) to s3://{env.store.bucket}/{BACKUPS_PREFIX}{backup_id}/")
            for f in manifest["files"]:
                env.store.upload_file(dump_dir / f["path"], f"{BACKUPS_PREFIX}{backup_id}/dump/{f['path']}")
            manifest["timings"] = {"dump_seconds": round(t_dump, 2), "upload_seconds": round(time.monotonic() - t0 - t_dump, 2)}
            manifest["completed_at"] = iso(now())
            manifest["duration_seconds"] = round(time.monotonic() - t0, 2)
            env.store.put_json(f"{BACKUPS_PREFIX}{backup_id}/{MANIFEST}", manifest)  # last: its presence marks a complete backup
        finally:
            shutil.rmtree(work, ignore_errors=True)
            try:
                work.parent.rmdir()
            except OSError:
                pass
    except BaseException as exc:
        outcome = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
        audit.record(env.state_dir, "backup.create", env.name, inputs=inputs, outcome=outcome,
                     detail={"backup_id": backup_id, "error": getattr(exc, "message", None) or repr(exc)})
        raise
    progress(f"{time.monotonic() - t0:5.1f}s  backup {backup_id} complete")
    audit.record(env.state_dir, "backup.create", env.name, inputs=inputs, outcome="ok", before=None,
                 after={"backup_id": backup_id, "key": f"{BACKUPS_PREFIX}{backup_id}/{MANIFEST}",
                        "snapshot_at": manifest["snapshot"]["at"], "total_bytes": manifest["total_bytes"],
                        "rows": sum(t["rows"] for t in manifest["tables"].values())})
    return manifest


def _dump(env: Environment, backup_id: str, dump_dir: Path, started: dt.datetime, progress: Progress) -> dict[str, Any]:
    from ..adapters import postgres as pgt

    src = env.source
    conn = pgt.connect(src, autocommit=False)
    try:
        snap = pgt.export_snapshot(conn)
        snapshot, snap_at, in_recovery, replayed_at, lsn, behind = (
            snap.id, snap.taken_at, snap.in_recovery, snap.last_replayed_commit_at, snap.lsn, snap.replay_behind_receive)
        # The restore point is the moment of the snapshot, unless the replica had received WAL it had not
        # replayed yet: then the data is as of its last replayed commit (the primary is never asked).
        point = replayed_at if behind and replayed_at else snap_at
        progress(f"snapshot {snapshot} on {src.role} {src.address} at {iso(snap_at)}; pg_dump -Fd -j {JOBS} "
                 f"-Z {COMPRESS}, counting rows and checksumming tables in the same snapshot meanwhile")

        def fingerprint() -> tuple[dict[str, Any], dict[str, Any]]:
            return pgt.table_stats(conn), pgt.schema_fingerprint(conn)

        # The exporting transaction stays open (the snapshot stays importable) until pg_dump is done.
        stats, schema = pgt.pg_dump(src, dump_dir, snapshot=snapshot, jobs=JOBS, compress=COMPRESS, meanwhile=fingerprint)
        progress("pg_dump done; hashing the files")
        server = pgt.server_version(conn)
        conn.rollback()
    except pgt.ToolFailed as exc:
        raise Unreachable(f"backup of {src.address} failed: {exc.message}", hint=exc.output) from None
    finally:
        conn.close()
    files = [{"path": p, "size": size, "sha256": digest} for p, size, digest in pgt.file_digests(dump_dir)]
    return {
        "format": 1, "backup_id": backup_id, "environment": env.name, "created_at": iso(started),
        "method": f"pg_dump -Fd -j {JOBS} -Z {COMPRESS} --snapshot (exported from a REPEATABLE READ transaction)",
        "source": src.public(),
        "snapshot": {"id": snapshot, "at": iso(point), "taken_at": iso(snap_at), "in_recovery": in_recovery,
                     "last_replayed_commit_at": iso(replayed_at), "replay_behind_receive": behind, "lsn": lsn},
        "tool_versions": {**pgt.tool_versions(), "server": server},
        "files": files, "total_bytes": sum(f["size"] for f in files),
        "tables": stats, "schema": schema,
    }


# --- read -------------------------------------------------------------------------------------------

@dataclass
class Listing:
    """What can be restored: the bucket's complete backups (oldest first), its damaged ones (each with its reason),
    and in dev/staging/prod the RDS restore points (rds_backup.restore_points: snapshots, the point-in-time window)."""

    backups: list[dict[str, Any]]
    damaged: list[dict[str, Any]]
    rds: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        return {"backups": self.backups, "damaged": self.damaged, **(self.rds or {})}


def restore_points(env_name: str, state_dir: Path | None = None) -> Listing:
    """`taly backup list`: the logical backups, and for a cloud environment its RDS restore points too."""
    env = resolve(env_name, state_dir)
    listing = list_backups(env)
    if not env.is_local:
        from . import rds_backup

        listing.rds = rds_backup.restore_points(env)
    return listing


def take(env_name: str, kind: str = "logical", *, wait: bool = True, state_dir: Path | None = None,
         progress: Progress = _noop) -> BackupReport | SnapshotReport:
    """`taly backup create`: a logical backup (every environment; its manifest) or an RDS snapshot of the primary
    (dev/staging/prod; `wait` until it is available). A snapshot of the local estate is exit 2 before anything."""
    from .reports import BackupReport, SnapshotReport

    from ..environment import LOCAL, check_name

    if check_name(env_name) == LOCAL and kind == "snapshot":
        from . import rds_backup

        rds_backup.require_cloud(env_name, "--kind snapshot")
    env = resolve(env_name, state_dir)
    if kind == "snapshot":
        from . import rds_backup

        return SnapshotReport.model_validate(rds_backup.create_snapshot(env, wait=wait, progress=progress))
    return BackupReport.model_validate(create(env, progress=progress))


def list_backups(env: Environment) -> Listing:
    """Complete backups (those with a manifest), oldest first; damaged manifests listed apart, never in the way."""
    from .manifest import DamagedBackup

    env.store.check()
    out, damaged = [], []
    for entry in env.store.keys(BACKUPS_PREFIX, delimiter="/"):
        prefix = entry.get("Prefix")
        if not prefix:
            continue
        backup_id = prefix[len(BACKUPS_PREFIX):].rstrip("/")
        try:
            m = read_manifest(env, backup_id)
        except KeyError:
            continue  # incomplete: the manifest is written last
        except DamagedBackup as exc:
            damaged.append({"backup_id": backup_id, "key": exc.key, "reason": exc.reason})
            continue
        out.append(summary(m))
    # By creation time (milliseconds): two backups in one second have ids that sort by their random suffix.
    return Listing(sorted(out, key=lambda b: (b["created_at"], b["backup_id"])),
                   sorted(damaged, key=lambda b: b["backup_id"]))


def read_manifest(env: Environment, backup_id: str) -> dict[str, Any]:
    """backups/<id>/manifest.json, validated; KeyError when there is none, DamagedBackup when it cannot be trusted."""
    from . import manifest as manifest_model

    key = f"{BACKUPS_PREFIX}{backup_id}/{MANIFEST}"
    where = f"s3://{env.store.bucket}/{key}"
    try:
        raw = env.store.get_json(key)
    except ValueError as exc:  # truncated, not UTF-8, not JSON
        raise manifest_model.DamagedBackup(backup_id, where, manifest_model.not_json(exc)) from None
    return manifest_model.validate(raw, backup_id, where)


def summary(m: dict[str, Any]) -> dict[str, Any]:
    return {"backup_id": m["backup_id"], "snapshot_at": m["snapshot"]["at"], "created_at": m["created_at"],
            "source": f"{m['source']['role']} {m['source']['host']}:{m['source']['port']}",
            "total_bytes": m["total_bytes"], "files": len(m["files"]), "tables": len(m["tables"]),
            "rows": sum(t["rows"] for t in m["tables"].values())}


def manifest(env: Environment, backup_id: str) -> dict[str, Any]:
    """The manifest of backup_id, or of the latest intact backup for 'latest'.

    BadInput when there is none; DamagedBackup (exit 1) when the one asked for cannot be trusted.
    """
    env.store.check()
    if backup_id == "latest":
        listing = list_backups(env)
        if not listing.backups:
            damaged = f" ({len(listing.damaged)} damaged: `taly backup list` names them)" if listing.damaged else ""
            raise BadInput(f"there is no intact backup of {env.name} in s3://{env.store.bucket}/{BACKUPS_PREFIX}"
                           + damaged, hint=f"take one with `taly backup create --env {env.name}`")
        backup_id = listing.backups[-1]["backup_id"]
    if not backup_id or "/" in backup_id:
        raise BadInput(f"invalid backup id {backup_id!r}")
    try:
        return read_manifest(env, backup_id)
    except KeyError:
        raise BadInput(f"unknown backup id {backup_id} in s3://{env.store.bucket}/{BACKUPS_PREFIX}",
                       hint=f"`taly backup list --env {env.name}` lists them") from None
