"""RDS backup and drill pieces that need no server: routing of --from, names, the PITR window, error mapping."""

from __future__ import annotations

import datetime as dt
import re
import xml.etree.ElementTree as ET
from types import SimpleNamespace

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError

from taly_ops.adapters import rds as rds_api
from taly_ops.errors import BadInput, Unreachable
from taly_ops import junit
from taly_ops.operations import rds_backup
from taly_ops.operations.drills import rds as rds_drill
from taly_ops.operations.drills import rds_reap

T = dt.datetime(2026, 3, 4, 5, 6, 7, tzinfo=dt.timezone.utc)


@pytest.mark.parametrize("source, rds", [
    ("snapshot", True), ("pitr", True), ("taly-dev-20260304t050607-abcdef", True), ("rds:taly-dev-db-2026-03-04-05-06", True),
    ("latest", False), ("20260304T050607Z-abcdef", False), ("", False),
])
def test_from_routes_rds_sources_and_logical_backups(source, rds):
    assert rds_drill.is_rds_source(source) is rds


def test_drill_and_snapshot_identifiers_are_valid_rds_identifiers():
    for env in ("dev", "staging", "prod"):
        drill_id = rds_drill.new_drill_id(env, T)
        assert re.fullmatch(rf"taly-drill-{env}-20260304t050607-[0-9a-f]{{6}}", drill_id)
        assert len(drill_id) <= 63 and "--" not in drill_id  # RDS: 63 characters, no double hyphen
        assert re.fullmatch(rf"taly-{env}-20260304t050607-[0-9a-f]{{6}}", rds_backup.new_snapshot_id(env, T))
    assert rds_drill.new_drill_id("dev", T) != rds_drill.new_drill_id("dev", T)


def test_a_target_that_is_the_primary_or_a_replica_is_refused_whatever_its_case():
    env = SimpleNamespace(name="prod", contract=SimpleNamespace(database=SimpleNamespace(
        primary_id="taly-prod-postgres", replica_ids=["taly-prod-postgres-replica-1"])))
    for target in ("taly-prod-postgres", "TALY-PROD-POSTGRES-REPLICA-1"):
        with pytest.raises(BadInput, match="is a source of prod"):
            rds_drill.refuse_target(env, target)
    rds_drill.refuse_target(env, "taly-drill-prod-20260304t050607-abcdef")


def test_point_in_time_window_from_the_instance_and_its_automated_backups():
    inst = {"DBInstanceIdentifier": "taly-prod-postgres", "BackupRetentionPeriod": 14, "LatestRestorableTime": T}
    automated = [{"Status": "active", "RestoreWindow": {"EarliestTime": T - dt.timedelta(days=14), "LatestTime": T}},
                 {"Status": "retained", "RestoreWindow": {"EarliestTime": T - dt.timedelta(days=20),
                                                          "LatestTime": T - dt.timedelta(days=6)}}]
    window = rds_backup.point_in_time(inst, automated)
    assert window["enabled"] is True and window["backup_retention_days"] == 14
    assert window["latest_restorable_time"] == "2026-03-04T05:06:07.000+00:00"
    assert window["earliest_restorable_time"] == "2026-02-12T05:06:07.000+00:00"
    assert window["restore_window"] == {"earliest": "2026-02-12T05:06:07.000+00:00", "latest": "2026-03-04T05:06:07.000+00:00"}
    off = rds_backup.point_in_time({"DBInstanceIdentifier": "x", "BackupRetentionPeriod": 0}, [])
    assert off["enabled"] is False and off["latest_restorable_time"] is None and off["restore_window"] is None


def _client_error(code: str, message: str = "nope") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, "DescribeDBSnapshots")


@pytest.mark.parametrize("error, kind, exit_code", [
    (_client_error("DBSnapshotNotFound", "DBSnapshot x not found."), rds_api.NotFound, 2),
    (_client_error("InvalidDBInstanceState", "Instance is not available"), rds_api.InvalidState, 2),
    (_client_error("DBInstanceAlreadyExists"), BadInput, 2),
    (_client_error("AccessDenied", "not authorized\nto do this"), Unreachable, 3),
    (_client_error("Throttling"), Unreachable, 3),
    (EndpointConnectionError(endpoint_url="http://127.0.0.1:1"), Unreachable, 3),
    (NoCredentialsError(), Unreachable, 3),
])
def test_botocore_errors_become_one_line_and_an_exit_code(error, kind, exit_code):
    def fail():
        raise error

    with pytest.raises(kind) as exc:
        rds_api.call("DescribeDBSnapshots x", fail)
    assert exc.value.exit_code == exit_code
    assert "DescribeDBSnapshots x" in exc.value.message and "\n" not in exc.value.message


def test_scratch_settings_are_private_single_az_deletable_and_in_the_drill_group_only():
    settings = rds_api.scratch_settings(subnet_group="taly-prod-postgres", security_group_id="sg-drill",
                                        tags={"taly:drill": "true"})
    assert settings["VpcSecurityGroupIds"] == ["sg-drill"] and settings["DBSubnetGroupName"] == "taly-prod-postgres"
    assert (settings["PubliclyAccessible"], settings["MultiAZ"], settings["DeletionProtection"]) == (False, False, False)
    assert settings["Tags"] == [{"Key": "taly:drill", "Value": "true"}]


def test_junit_of_an_rds_drill_names_the_restore_point_kind_and_the_error():
    report = {
        "drill_id": "taly-drill-prod-20260304t050607-abcdef", "environment": "prod", "backup_id": None,
        "restore_point_kind": "pitr", "restore_point": "2026-03-04T05:06:07.000+00:00", "status": "failed",
        "started_at": "2026-03-04T05:06:08.000+00:00", "rpo_seconds": 1.0, "rto_seconds": None,
        "error": "verification failed: cannot connect to the restored instance",
        "targets": {"rpo_seconds": 3600, "rto_seconds": 14400, "rpo_met": True, "rto_met": False},
        "timings": {"total_seconds": 3.0},
        "verification": {"files": [], "files_passed": None, "schema_passed": False, "schema": {}, "tables": [],
                         "invariants": [], "smoke": [], "passed": False},
    }
    suite = ET.fromstring(junit.junit_xml(report))
    props = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert props["restore_point_kind"] == "pitr"
    failed = {c.get("name") for c in suite.iter("testcase") if c.find("failure") is not None}
    skipped = {c.get("name") for c in suite.iter("testcase") if c.find("skipped") is not None}
    # The verification never connected: the schema and the RTO were not checked (issue 10 item 3), so skipped.
    assert failed == {"completed"} and skipped == {"schema fingerprint", "rto"}
    assert suite.get("failures") == "1" and suite.get("skipped") == "2"


class _FakeRDS:
    """Enough of a boto3 RDS client for reap_rds: list, describe one, delete (gone at once)."""

    def __init__(self, instances: list[dict]) -> None:
        self.instances = {i["DBInstanceIdentifier"]: i for i in instances}
        self.deleted: list[str] = []

    def get_paginator(self, name: str):
        assert name == "describe_db_instances"
        return SimpleNamespace(paginate=lambda: [{"DBInstances": list(self.instances.values())}])

    def describe_db_instances(self, DBInstanceIdentifier: str):
        if DBInstanceIdentifier not in self.instances:
            raise ClientError({"Error": {"Code": "DBInstanceNotFound", "Message": "not found"}}, "DescribeDBInstances")
        return {"DBInstances": [self.instances[DBInstanceIdentifier]]}

    def delete_db_instance(self, DBInstanceIdentifier: str, **_: object):
        self.deleted.append(DBInstanceIdentifier)
        return {"DBInstance": {**self.instances.pop(DBInstanceIdentifier), "DBInstanceStatus": "deleting"}}


def _reap_env(tmp_path, rds) -> SimpleNamespace:
    return SimpleNamespace(name="dev", state_dir=tmp_path, aws_client=lambda service: rds,
                           contract=SimpleNamespace(database=SimpleNamespace(primary_id="taly-dev-db", replica_ids=[])))


def _drill_instance(iid: str, started_at: str) -> dict:
    tags = {"taly:drill": "true", "taly:environment": "dev", "taly:started-at": started_at, "taly:owner": "none"}
    return {"DBInstanceIdentifier": iid, "DBInstanceStatus": "available", "TagList": rds_api.tag_list(tags),
            "InstanceCreateTime": dt.datetime.now(dt.timezone.utc)}


def test_reap_reads_a_started_at_tag_without_offset_as_utc_and_a_bad_one_as_old_enough(tmp_path):
    utc_now = dt.datetime.now(dt.timezone.utc)
    naive_old = (utc_now - dt.timedelta(hours=5)).replace(tzinfo=None).isoformat(timespec="seconds")
    naive_young = (utc_now - dt.timedelta(minutes=10)).replace(tzinfo=None).isoformat(timespec="seconds")
    rds = _FakeRDS([_drill_instance("taly-drill-dev-a", naive_old), _drill_instance("taly-drill-dev-b", naive_young),
                    _drill_instance("taly-drill-dev-c", "last tuesday")])
    lines: list[str] = []
    entries = rds_reap.reap_rds(_reap_env(tmp_path, rds), older_than_hours=1, progress=lines.append)
    by_id = {e["instance_id"]: e for e in entries}
    assert by_id["taly-drill-dev-a"]["deleted"] is True and "warning" not in by_id["taly-drill-dev-a"]
    assert by_id["taly-drill-dev-b"]["skipped"] == "younger than 1h"  # 10 min ago in UTC, whatever the local zone
    bad = by_id["taly-drill-dev-c"]
    assert bad["deleted"] is True
    assert bad["warning"] == "its taly:started-at tag 'last tuesday' is not an ISO 8601 time; taken as old enough"
    assert rds.deleted == ["taly-drill-dev-a", "taly-drill-dev-c"]
    assert any("warning: taly-drill-dev-c: its taly:started-at tag" in line for line in lines)


def test_owner_tags_name_their_host():
    assert rds_reap.owner_host("ops-runner-2.internal:4242:987654") == "ops-runner-2.internal"
    assert rds_reap.owner_host("none") is None and rds_reap.owner_host(None) is None
    assert rds_reap.owner_host("host:notapid:1") is None
