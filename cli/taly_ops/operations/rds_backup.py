"""RDS backups of a cloud environment's primary: manual snapshots, and what can be restored from.

`create_snapshot` takes a manual snapshot of the contract's primary (tagged taly:backup=true,
taly:created-by=taly, environment); `restore_points` lists the primary's snapshots (manual and
automated) and its point-in-time window (LatestRestorableTime, the automated backups' RestoreWindow,
BackupRetentionPeriod). The logical backups (pg_dump of the replica to the bucket) are
operations/backup.py's; both kinds work in dev, staging and prod, only logical ones locally.
"""

from __future__ import annotations

import datetime as dt
import secrets
import time
from typing import Any, Callable

from ..errors import BadInput
from ..environment import Environment
from .steps import iso, now

Progress = Callable[[str], None]
SNAPSHOT_WAIT_SECONDS = 4 * 3600


def _noop(line: str) -> None:
    pass


def require_cloud(env: Environment | str, what: str) -> None:
    """BadInput (exit 2) unless env (an Environment, or its name before resolving it) is dev, staging or prod."""
    from ..environment import CLOUD as CLOUD_ENVS

    local = env not in CLOUD_ENVS if isinstance(env, str) else (env.is_local or env.contract is None)
    if local:
        raise BadInput(f"{what} needs RDS: it is for {', '.join(CLOUD_ENVS)} (the local estate's PostgreSQL is not RDS)",
                       hint="locally, use the logical kind: `--kind logical` / `--from latest` or a backup id")


def primary(env: Environment, rds) -> dict[str, Any]:
    """The contract's primary as RDS describes it; BadInput when RDS has no such instance (a stale contract)."""
    from ..adapters import rds as rds_api

    db = env.contract.database
    inst = rds_api.instance(rds, db.primary_id)
    if inst is None:
        raise BadInput(f"the {env.name} contract names the primary {db.primary_id}, which RDS in {env.contract.region} "
                       "does not have", hint=f"rewrite the contract: pulumi stack output --stack {env.name} --json "
                                             f"> contracts/{env.name}.json")
    return inst


def new_snapshot_id(env: str, t: dt.datetime) -> str:
    """taly-<env>-<yyyymmdd>t<hhmmss>-<hex>: lower case, as RDS stores identifiers."""
    return f"taly-{env}-{t.strftime('%Y%m%dt%H%M%S')}-{secrets.token_hex(3)}"


def create_snapshot(env: Environment, *, wait: bool = True, timeout: float = SNAPSHOT_WAIT_SECONDS,
                    progress: Progress = _noop) -> dict[str, Any]:
    """A manual snapshot of the primary; waits until it is available unless wait=False."""
    from .. import audit
    from ..adapters import rds as rds_api

    require_cloud(env, "--kind snapshot")
    rds = env.aws_client("rds")
    db = env.contract.database
    started = now()
    t0 = time.monotonic()
    primary(env, rds)  # exit 2 for a stale contract, 3 when RDS does not answer, before anything is asked for
    snapshot_id = new_snapshot_id(env.name, started)
    tags = {"taly:backup": "true", "taly:created-by": "taly", "environment": env.name}
    inputs = {"kind": "snapshot", "instance": db.primary_id, "snapshot_id": snapshot_id, "wait": wait}
    try:
        snap = rds_api.create_snapshot(rds, db.primary_id, snapshot_id, tags)
    except BaseException as exc:
        audit.record(env.state_dir, "backup.create", env.name, inputs=inputs, outcome="failed",
                     detail={"error": getattr(exc, "message", None) or repr(exc)})
        raise
    audit.record(env.state_dir, "backup.create", env.name, inputs=inputs, outcome="requested", before=None,
                 after={"snapshot_id": snapshot_id, "arn": snap.get("DBSnapshotArn"), "status": snap.get("Status")})
    progress(f"snapshot {snapshot_id} of {db.primary_id} requested ({snap.get('Status')})")
    if wait and snap.get("Status") != "available":
        from .steps import signals_raise

        with signals_raise():
            snap = rds_api.wait_snapshot(rds, snapshot_id, timeout=timeout, progress=progress)
    result = snapshot_summary(snap, env.contract.database.primary_id)
    result |= {"kind": "snapshot", "backup_id": snapshot_id, "environment": env.name, "requested_at": iso(started),
               "duration_seconds": round(time.monotonic() - t0, 2)}
    if result["status"] == "available":
        audit.record(env.state_dir, "backup.create", env.name, inputs=inputs, outcome="ok",
                     after={"snapshot_id": snapshot_id, "created_at": result["created_at"]})
    return result


def snapshot_summary(s: dict[str, Any], primary_id: str | None = None) -> dict[str, Any]:
    from ..adapters.rds import tag_map, utc

    tags = tag_map(s)
    return {"snapshot_id": s["DBSnapshotIdentifier"], "type": s.get("SnapshotType"), "status": s.get("Status"),
            "created_at": iso(utc(s.get("SnapshotCreateTime"))), "instance_id": s.get("DBInstanceIdentifier"),
            "engine_version": s.get("EngineVersion"), "allocated_gib": s.get("AllocatedStorage"),
            "encrypted": s.get("Encrypted"), "arn": s.get("DBSnapshotArn"),
            "created_by_taly": tags.get("taly:created-by") == "taly", "tags": tags}


def restore_points(env: Environment) -> dict[str, Any]:
    """{"snapshots": [...oldest first], "point_in_time": {...}} for the contract's primary."""
    from ..adapters import rds as rds_api

    require_cloud(env, "RDS snapshots and point-in-time restore")
    rds = env.aws_client("rds")
    inst = primary(env, rds)
    pid = inst["DBInstanceIdentifier"]
    snaps = [snapshot_summary(s) for s in rds_api.snapshots(rds, pid)]
    return {"snapshots": snaps, "point_in_time": point_in_time(inst, rds_api.automated_backups(rds, pid))}


def point_in_time(inst: dict[str, Any], automated: list[dict[str, Any]]) -> dict[str, Any]:
    """The restorable window: RDS's LatestRestorableTime, and the earliest from the automated backups."""
    from ..adapters.rds import utc

    retention = int(inst.get("BackupRetentionPeriod") or 0)
    windows = [b.get("RestoreWindow") or {} for b in automated if b.get("Status") in (None, "active", "retained")]
    earliest = min((utc(w["EarliestTime"]) for w in windows if w.get("EarliestTime")), default=None)
    latest_window = max((utc(w["LatestTime"]) for w in windows if w.get("LatestTime")), default=None)
    latest = utc(inst.get("LatestRestorableTime"))
    return {"instance_id": inst["DBInstanceIdentifier"], "enabled": retention > 0 and latest is not None,
            "backup_retention_days": retention, "latest_restorable_time": iso(latest),
            "earliest_restorable_time": iso(earliest),
            "restore_window": {"earliest": iso(earliest), "latest": iso(latest_window)} if windows else None,
            "automated_backups": [{"status": b.get("Status"), "arn": b.get("DBInstanceAutomatedBackupsArn"),
                                   "region": b.get("Region")} for b in automated]}
