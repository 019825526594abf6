"""Hourly Redis snapshots: the seeds ask for RDB snapshots every hour; ElastiCache takes one a day.

Deployed as a Lambda function and run every hour by an EventBridge Scheduler schedule (components/cache.py).
Each run takes one manual snapshot of the replication group, named <group>-hourly-<YYYYMMDDHH> (so a
retried run in the same hour takes none), and deletes this function's snapshots older than the
retention: manual snapshots never expire on their own. Self-contained: boto3 and the stdlib only.
"""

from __future__ import annotations

import datetime as dt
import os
from typing import Any

STAMP = "%Y%m%d%H"


def snapshot_name(group: str, at: dt.datetime) -> str:
    return f"{group}-hourly-{at.astimezone(dt.timezone.utc).strftime(STAMP)}"


def taken_at(group: str, name: str) -> dt.datetime | None:
    """When an hourly snapshot of group was taken, from its name; None for any other snapshot."""
    prefix = f"{group}-hourly-"
    if not name.startswith(prefix):
        return None
    try:
        return dt.datetime.strptime(name[len(prefix):], STAMP).replace(tzinfo=dt.timezone.utc)
    except ValueError:
        return None


def rotate(client: Any, group: str, retention_hours: int, now: dt.datetime) -> dict[str, Any]:
    """Take this hour's snapshot (if not taken yet) and delete hourly snapshots older than retention_hours."""
    snapshots = []
    marker = None
    while True:
        page = client.describe_snapshots(ReplicationGroupId=group, SnapshotSource="manual",
                                         **({"Marker": marker} if marker else {}))
        snapshots += page.get("Snapshots", [])
        marker = page.get("Marker")
        if not marker:
            break
    names = {s["SnapshotName"] for s in snapshots}
    name = snapshot_name(group, now)
    created = None
    if name not in names:
        client.create_snapshot(ReplicationGroupId=group, SnapshotName=name,
                               Tags=[{"Key": "taly:backup", "Value": "hourly"}])
        created = name
    cutoff = now - dt.timedelta(hours=retention_hours)
    deleted = []
    for other in sorted(names):
        at = taken_at(group, other)
        if at is not None and at < cutoff:
            client.delete_snapshot(SnapshotName=other)
            deleted.append(other)
    hourly = {n for n in names | {name} if taken_at(group, n) is not None}
    return {"replication_group": group, "created": created, "deleted": deleted, "kept": sorted(hourly - set(deleted))}


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    import boto3

    return rotate(boto3.client("elasticache"), os.environ["REPLICATION_GROUP_ID"],
                  int(os.environ["RETENTION_HOURS"]), dt.datetime.now(dt.timezone.utc))
