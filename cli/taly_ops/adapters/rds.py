"""Amazon RDS through boto3: snapshots, the point-in-time window, restores into scratch instances.

Every function takes a boto3 RDS client (`Environment.aws_client("rds")`); boto3 and botocore are
imported inside the functions. botocore's errors become one line: a resource that does not exist
or a request RDS refuses is BadInput (exit 2), NotFound or InvalidState being the kinds a caller may
want to tell apart; an endpoint that does not answer, missing or refused credentials, throttling
or a server error is Unreachable (exit 3).
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any, Callable

from ..errors import BadInput, Unreachable

Progress = Callable[[str], None]

NOT_FOUND = {"DBInstanceNotFound", "DBInstanceNotFoundFault", "DBSnapshotNotFound", "DBSnapshotNotFoundFault",
             "DBSubnetGroupNotFound", "DBSubnetGroupNotFoundFault", "DBInstanceAutomatedBackupNotFound",
             "DBInstanceAutomatedBackupNotFoundFault"}
INVALID_STATE = {"InvalidDBInstanceState", "InvalidDBInstanceStateFault", "InvalidDBSnapshotState",
                 "InvalidDBSnapshotStateFault"}
REFUSED = {"InvalidParameterValue", "InvalidParameterCombination", "DBInstanceAlreadyExists",
           "DBInstanceAlreadyExistsFault", "DBSnapshotAlreadyExists", "DBSnapshotAlreadyExistsFault",
           "InvalidRestoreFault", "PointInTimeRestoreNotEnabled", "PointInTimeRestoreNotEnabledFault",
           "InvalidVPCNetworkStateFault", "InvalidSubnet", "SnapshotQuotaExceeded", "InstanceQuotaExceeded",
           "StorageQuotaExceeded", "InsufficientDBInstanceCapacity", "KMSKeyNotAccessibleFault",
           "ValidationError"}
# States an instance passes through on its way to `available` (anything else while waiting is a failure).
TRANSITIONAL = {"creating", "backing-up", "modifying", "configuring-enhanced-monitoring", "configuring-log-exports",
                "configuring-iam-database-auth", "upgrading", "rebooting", "resetting-master-credentials",
                "renaming", "starting", "storage-optimization", "maintenance"}


class NotFound(BadInput):
    """The instance, snapshot or subnet group does not exist."""


class InvalidState(BadInput):
    """RDS refused because of the resource's current state (e.g. deleting an instance still creating)."""


def call(what: str, fn: Callable[[], Any]) -> Any:
    """Run one RDS call; botocore's errors become a TalyError with one line naming `what`."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return fn()
    except ClientError as exc:
        err = exc.response.get("Error", {})
        code, message = err.get("Code", ""), " ".join(str(err.get("Message") or "").split())
        line = f"RDS {what}: {code}: {message}" if message else f"RDS {what}: {code or exc}"
        if code in NOT_FOUND:
            raise NotFound(line) from None
        if code in INVALID_STATE:
            raise InvalidState(line) from None
        if code in REFUSED:
            raise BadInput(line) from None
        raise Unreachable(line, hint="check the AWS credentials and region for this account") from None
    except BotoCoreError as exc:
        raise Unreachable(f"RDS did not answer ({what}): {' '.join(str(exc).split())}",
                          hint="are AWS credentials set and the endpoint reachable (AWS_PROFILE, AWS_ENDPOINT_URL)?") from None


# --- tags -------------------------------------------------------------------------------------------

def tag_list(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": str(v)} for k, v in tags.items()]


def tag_map(resource: dict[str, Any]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in resource.get("TagList") or []}


def utc(t: dt.datetime | None) -> dt.datetime | None:
    return t.astimezone(dt.timezone.utc) if t else None


# --- read -------------------------------------------------------------------------------------------

def instance(client, identifier: str) -> dict[str, Any] | None:
    """The instance's description, or None when there is no such instance."""
    try:
        found = call(f"DescribeDBInstances {identifier}",
                     lambda: client.describe_db_instances(DBInstanceIdentifier=identifier)["DBInstances"])
    except NotFound:
        return None
    return found[0] if found else None


def instances(client) -> list[dict[str, Any]]:
    def run() -> list[dict[str, Any]]:
        return [i for page in client.get_paginator("describe_db_instances").paginate() for i in page["DBInstances"]]

    return call("DescribeDBInstances", run)


def snapshots(client, instance_id: str) -> list[dict[str, Any]]:
    """Manual and automated snapshots of the instance, oldest first (those still being created included)."""
    def run() -> list[dict[str, Any]]:
        out = []
        for kind in ("manual", "automated"):
            pages = client.get_paginator("describe_db_snapshots").paginate(DBInstanceIdentifier=instance_id,
                                                                          SnapshotType=kind)
            out += [s for page in pages for s in page["DBSnapshots"]]
        return out

    found = call(f"DescribeDBSnapshots {instance_id}", run)
    epoch = dt.datetime.min.replace(tzinfo=dt.timezone.utc)
    return sorted(found, key=lambda s: utc(s.get("SnapshotCreateTime")) or epoch)


def snapshot(client, snapshot_id: str) -> dict[str, Any]:
    """One snapshot by its identifier; NotFound when there is none."""
    found = call(f"DescribeDBSnapshots {snapshot_id}",
                 lambda: client.describe_db_snapshots(DBSnapshotIdentifier=snapshot_id)["DBSnapshots"])
    if not found:
        raise NotFound(f"RDS DescribeDBSnapshots {snapshot_id}: DBSnapshotNotFound")
    return found[0]


def automated_backups(client, instance_id: str) -> list[dict[str, Any]]:
    """The instance's automated backups (their RestoreWindow); [] when RDS keeps none."""
    try:
        return call(f"DescribeDBInstanceAutomatedBackups {instance_id}",
                    lambda: client.describe_db_instance_automated_backups(
                        DBInstanceIdentifier=instance_id)["DBInstanceAutomatedBackups"])
    except NotFound:
        return []


# --- write ------------------------------------------------------------------------------------------

def create_snapshot(client, instance_id: str, snapshot_id: str, tags: dict[str, str]) -> dict[str, Any]:
    return call(f"CreateDBSnapshot {snapshot_id} of {instance_id}", lambda: client.create_db_snapshot(
        DBSnapshotIdentifier=snapshot_id, DBInstanceIdentifier=instance_id, Tags=tag_list(tags))["DBSnapshot"])


def scratch_settings(*, subnet_group: str, security_group_id: str, tags: dict[str, str]) -> dict[str, Any]:
    """What every scratch instance is: private, single-AZ, deletable, in the drill-only security group."""
    return {"DBSubnetGroupName": subnet_group, "VpcSecurityGroupIds": [security_group_id],
            "PubliclyAccessible": False, "MultiAZ": False, "DeletionProtection": False,
            "BackupRetentionPeriod": 0, "CopyTagsToSnapshot": False, "AutoMinorVersionUpgrade": False,
            "Tags": tag_list(tags)}


def restore_from_snapshot(client, target_id: str, snapshot_id: str, settings: dict[str, Any]) -> dict[str, Any]:
    return call(f"RestoreDBInstanceFromDBSnapshot {snapshot_id} -> {target_id}",
                lambda: client.restore_db_instance_from_db_snapshot(
                    DBInstanceIdentifier=target_id, DBSnapshotIdentifier=snapshot_id, **settings)["DBInstance"])


def restore_to_point_in_time(client, source_id: str, target_id: str, restore_time: dt.datetime,
                             settings: dict[str, Any]) -> dict[str, Any]:
    return call(f"RestoreDBInstanceToPointInTime {source_id}@{restore_time.isoformat()} -> {target_id}",
                lambda: client.restore_db_instance_to_point_in_time(
                    SourceDBInstanceIdentifier=source_id, TargetDBInstanceIdentifier=target_id,
                    RestoreTime=restore_time, **settings)["DBInstance"])


def delete_instance(client, identifier: str) -> dict[str, Any] | None:
    """Delete without a final snapshot, with its automated backups; None when it did not exist."""
    try:
        return call(f"DeleteDBInstance {identifier}", lambda: client.delete_db_instance(
            DBInstanceIdentifier=identifier, SkipFinalSnapshot=True, DeleteAutomatedBackups=True)["DBInstance"])
    except NotFound:
        return None


# --- waiting ----------------------------------------------------------------------------------------

def wait_available(client, identifier: str, *, timeout: float, progress: Progress,
                   first_poll: float = 2.0, max_poll: float = 20.0) -> dict[str, Any]:
    """Poll until the instance is `available`; a progress line at every change of status (and every minute).

    Unreachable when it ends in a state it cannot leave (failed, incompatible-*, deleted) or times out.
    """
    t0 = time.monotonic()
    poll, last, last_said = first_poll, None, 0.0
    while True:
        inst = instance(client, identifier)
        status = inst.get("DBInstanceStatus") if inst else "gone"
        elapsed = time.monotonic() - t0
        if status != last or elapsed - last_said >= 60:
            progress(f"  {identifier}: {status} after {elapsed:.0f}s")
            last, last_said = status, elapsed
        if status == "available":
            return inst
        settling = status == "gone" and elapsed < 60  # describe may lag the restore call for a moment
        if status not in TRANSITIONAL and not settling:
            raise Unreachable(f"RDS instance {identifier} became {status} instead of available")
        if elapsed > timeout:
            raise Unreachable(f"RDS instance {identifier} is still {status} after {timeout:.0f}s")
        time.sleep(poll)
        poll = min(poll * 1.5, max_poll)


def wait_snapshot(client, snapshot_id: str, *, timeout: float, progress: Progress,
                  first_poll: float = 2.0, max_poll: float = 30.0) -> dict[str, Any]:
    t0 = time.monotonic()
    poll, last = first_poll, None
    while True:
        snap = snapshot(client, snapshot_id)
        status = snap.get("Status")
        elapsed = time.monotonic() - t0
        if status != last:
            pct = snap.get("PercentProgress")
            progress(f"  {snapshot_id}: {status}" + (f" ({pct}%)" if pct is not None else "") + f" after {elapsed:.0f}s")
            last = status
        if status == "available":
            return snap
        if status not in ("creating", "copying"):
            raise Unreachable(f"RDS snapshot {snapshot_id} became {status} instead of available")
        if elapsed > timeout:
            raise Unreachable(f"RDS snapshot {snapshot_id} is still {status} after {timeout:.0f}s",
                              hint="it keeps being created; `taly backup list` shows it when it is available")
        time.sleep(poll)
        poll = min(poll * 1.5, max_poll)
