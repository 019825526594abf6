"""Scratch RDS instances: deleting one, and `taly drill reap` for those drills left in RDS.

`reap` cannot tell whether a drill on another host still runs (the taly:owner tag's pid is that host's):
an instance owned by another host and started less than OTHER_HOST_DRILL_HOURS ago is left alone
unless --force.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from typing import Any

from ...errors import BadInput
from ..backup import now
import socket

from ...environment import Environment
from ..steps import Progress, quiet

WAIT_MINUTES = 120            # how long a restore may take to become available
TEARDOWN_WAIT_SECONDS = 1800  # how long to wait for an instance that cannot be deleted yet (still creating)
# The longest a drill on another host may still be running: the default restore wait (--wait-minutes) plus an
# hour for verifying and tearing down. `reap` leaves such younger instances alone unless --force.
OTHER_HOST_DRILL_HOURS = (WAIT_MINUTES + 60) / 60


def owner_tag() -> str:
    from ...local import supervisor

    return f"{socket.gethostname()}:{os.getpid()}:{supervisor.start_time(os.getpid()) or 0}"


def owner_host(tag: str | None) -> str | None:
    """The host of a `host:pid:start-time` owner tag; None for `none` (kept) or anything else."""
    try:
        host, pid, started = (tag or "").rsplit(":", 2)
        int(pid), int(started)
    except ValueError:
        return None
    return host or None


def owner_alive(tag: str | None) -> int | None:
    """The pid of the drill that owns an instance, if it runs on this host and still lives."""
    from ...local import supervisor

    try:
        host, pid, started = (tag or "").rsplit(":", 2)
        pid_i, started_i = int(pid), int(started)
    except ValueError:
        return None
    if host != socket.gethostname():
        return None
    return pid_i if supervisor.alive(pid_i, started_i or None) else None


def mark_kept(rds, inst: dict[str, Any]) -> None:
    """Kept instances have no owner any more: `reap` removes them without waiting for this process to end."""
    from ...adapters import rds as rds_api

    arn = inst.get("DBInstanceArn")
    if arn:
        rds_api.call(f"AddTagsToResource {inst['DBInstanceIdentifier']}", lambda: rds.add_tags_to_resource(
            ResourceName=arn, Tags=rds_api.tag_list({"taly:kept": "true", "taly:owner": "none"})))


def delete(env: Environment, rds, instance_id: str, *, progress: Progress,
           wait_seconds: float = TEARDOWN_WAIT_SECONDS) -> dict[str, Any]:
    """DeleteDBInstance (SkipFinalSnapshot, DeleteAutomatedBackups), waiting while RDS says it cannot yet."""
    from ... import audit
    from ...adapters import rds as rds_api

    t0 = time.monotonic()
    while True:
        try:
            deleted = rds_api.delete_instance(rds, instance_id)
            break
        except rds_api.InvalidState as exc:
            if time.monotonic() - t0 > wait_seconds:
                raise
            progress(f"  {instance_id} cannot be deleted yet ({exc.message}); retrying in 15s")
            time.sleep(15)
    after = rds_api.instance(rds, instance_id)
    status = after.get("DBInstanceStatus") if after else "gone"
    audit.record(env.state_dir, "drill.rds.delete", env.name, outcome="ok" if deleted is not None else "absent",
                 inputs={"instance_id": instance_id, "skip_final_snapshot": True, "delete_automated_backups": True},
                 before={"status": deleted.get("DBInstanceStatus") if deleted else None}, after={"status": status})
    progress(f"scratch instance {instance_id} deleted ({status})" if deleted is not None
             else f"scratch instance {instance_id} was already gone")
    return {"deleted": deleted is not None, "status_after": status, "final_snapshot": False,
            "automated_backups_deleted": True}


def reap(env: Environment, older_than_hours: float = 0.0, progress: Progress = quiet,
         force: bool = False) -> dict[str, Any]:
    """What drills of a cloud environment left behind: logical drills' scratch PostgreSQL on this machine
    (scratch.reap; `force` does not apply) and scratch RDS instances. Same shape as scratch.reap's result;
    RDS entries have kind "rds", and "warning" when their taly:started-at tag could not be read."""
    from ... import audit
    from .scratch import reap as reap_scratch

    result = reap_scratch(env, older_than_hours, progress=progress)
    entries = reap_rds(env, older_than_hours, progress=progress, force=force)
    reaped = [e for e in entries if "skipped" not in e]
    result["reaped"] += reaped
    result["skipped"] += [{"drill_id": e["drill_id"], "instance_id": e["instance_id"], "kind": "rds",
                           "reason": e["skipped"], **({"warning": e["warning"]} if "warning" in e else {})}
                          for e in entries if "skipped" in e]
    audit.record(env.state_dir, "drill.reap.rds", env.name, inputs={"older_than_hours": older_than_hours,
                                                                    "force": force},
                 outcome="ok", after={"reaped": [e["instance_id"] for e in reaped]})
    return result


def started_at_of(tags: dict[str, str], inst: dict[str, Any]) -> tuple[dt.datetime | None, str | None]:
    """(when the instance's drill started, aware; a problem with its tag). None: not known, taken as old enough.

    taly:started-at without a UTC offset is UTC (what drills write); without the tag, the creation time.
    """
    from ...adapters import rds as rds_api

    raw = tags.get("taly:started-at")
    if raw is None:
        return rds_api.utc(inst.get("InstanceCreateTime")) or now(), None
    try:
        started = dt.datetime.fromisoformat(raw.strip())
    except ValueError:
        return None, f"its taly:started-at tag {raw[:64]!r} is not an ISO 8601 time; taken as old enough"
    return (started.replace(tzinfo=dt.timezone.utc) if started.tzinfo is None else started), None


def reap_rds(env: Environment, older_than_hours: float = 0.0, progress: Progress = quiet,
             force: bool = False) -> list[dict[str, Any]]:
    """Delete scratch instances drills left in RDS: tagged taly:drill=true, named taly-drill-<env>-*.

    Skipped: younger than older_than_hours (by taly:started-at, else the creation time), owned by a drill
    still running on this host, owned by another host and younger than OTHER_HOST_DRILL_HOURS (unless
    force: this host cannot tell whether that drill still runs), already deleting. Never the contract's
    primary or replicas. An unreadable taly:started-at is taken as old enough, and the entry's "warning"
    says so.
    """
    from ... import audit
    from ...adapters import rds as rds_api

    require_prefix = f"taly-drill-{env.name}-"
    db = env.contract.database
    protected = {db.primary_id.lower(), *(r.lower() for r in db.replica_ids)}
    cutoff = now() - dt.timedelta(hours=older_than_hours)
    rds = env.aws_client("rds")
    out: list[dict[str, Any]] = []
    for inst in rds_api.instances(rds):
        iid = inst["DBInstanceIdentifier"]
        tags = rds_api.tag_map(inst)
        if not iid.lower().startswith(require_prefix) or tags.get("taly:drill") != "true" or iid.lower() in protected:
            continue
        if tags.get("taly:environment", env.name) != env.name:
            continue
        status = inst.get("DBInstanceStatus")
        entry = {"drill_id": tags.get("taly:drill-id", iid), "instance_id": iid, "kind": "rds", "status": status,
                 "port": (inst.get("Endpoint") or {}).get("Port"), "dir": None,
                 "instance_was_running": status == "available", "kept": tags.get("taly:kept") == "true"}
        started, bad_tag = started_at_of(tags, inst)
        if bad_tag:
            entry["warning"] = bad_tag
            progress(f"warning: {iid}: {bad_tag}")
        if started is not None and started > cutoff:
            out.append({**entry, "skipped": f"younger than {older_than_hours:g}h"})
            continue
        owned = tags.get("taly:kept") != "true"
        if owned and (pid := owner_alive(tags.get("taly:owner"))):
            out.append({**entry, "skipped": f"its drill (pid {pid}) is still running"})
            continue
        host = owner_host(tags.get("taly:owner")) if owned else None
        if (not force and host is not None and host != socket.gethostname() and started is not None
                and now() - started < dt.timedelta(hours=OTHER_HOST_DRILL_HOURS)):
            out.append({**entry, "skipped": f"owned by {host}, may still be running; pass --older-than 0 --force "
                                            "to remove"})
            continue
        if status == "deleting":
            out.append({**entry, "skipped": "already deleting"})
            continue
        try:
            result = delete(env, rds, iid, progress=progress, wait_seconds=0)
        except BadInput as exc:
            audit.record(env.state_dir, "drill.rds.delete", env.name, inputs={"instance_id": iid}, outcome="failed",
                         detail={"error": exc.message})
            out.append({**entry, "skipped": f"RDS refused to delete it: {exc.message}"})
            continue
        out.append({**entry, **result})
        progress(f"reaped {iid} (was {status})")
    return out
