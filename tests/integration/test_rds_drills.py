"""`taly backup --kind snapshot` and `taly drill restore --from snapshot|pitr|<id>` against moto over HTTP.

The session's moto_server (conftest.py: the local estate's own emulator launcher, on a free port), seeded
for the module like a cloud environment: a VPC, the DB subnet group, the drill-only security group and the
database's own one, the master secret, an RDS primary with a read replica, and the backups bucket.
Each test writes contracts/dev.json (conftest.py `make_contract`) into its own project root
(TALY_PROJECT_ROOT) and points boto3's default chain at moto with AWS_ENDPOINT_URL; boto3 itself is untouched.

What moto cannot do, and what that means here: it restores no data and its endpoints
(<id>.aaaaaaaaaa.<region>.rds.amazonaws.com) do not resolve. So a drill's data verification cannot
connect: every drill here must end `failed`, exit 1, with a verification error naming the restored
endpoint, and its instance must be gone from moto afterwards. What is tested is the orchestration:
the restore point and RPO, the restore call's parameters (read back from moto), the teardown on
failure and on SIGTERM, --keep and reap, and the refusals. moto ignores a restore's falsy overrides
(PubliclyAccessible=False, MultiAZ=False, DeletionProtection=False) and copies them from the source,
so the seeded primary is private, single-AZ and unprotected: a drill that asked for True would show.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from taly_ops.local import aws_emulator, supervisor

pytestmark = pytest.mark.integration

REGION = "eu-west-1"
ENV = "dev"
PRIMARY, REPLICA = "taly-dev-db", "taly-dev-db-replica-1"
SUBNET_GROUP = "taly-dev-postgres"
BUCKET = "taly-dev-backups-123456789012"
DATABASE = "taly"
DRILL_ID = re.compile(r"^taly-drill-dev-\d{8}t\d{6}-[0-9a-f]{6}$")


# --- moto ---------------------------------------------------------------------------------------------

def client(cloud: dict, service: str):
    return aws_emulator.client(service, cloud["url"])


@pytest.fixture(scope="module")
def cloud(moto_server) -> dict:
    """The AWS side of a cloud environment, in the session's moto; returns the ids a contract names."""
    ec2, rds, sm, s3 = (aws_emulator.client(s, moto_server) for s in ("ec2", "rds", "secretsmanager", "s3"))
    vpc = ec2.create_vpc(CidrBlock="10.10.0.0/16")["Vpc"]["VpcId"]
    subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.10.{i}.0/24", AvailabilityZone=f"{REGION}{az}")["Subnet"]["SubnetId"]
               for i, az in enumerate("ab")]
    rds.create_db_subnet_group(DBSubnetGroupName=SUBNET_GROUP, DBSubnetGroupDescription="database subnets",
                               SubnetIds=subnets)
    db_sg = ec2.create_security_group(GroupName="taly-dev-postgres", Description="PostgreSQL from the EKS cluster only",
                                      VpcId=vpc)["GroupId"]
    drill_sg = ec2.create_security_group(GroupName="taly-dev-postgres-drill", VpcId=vpc,
                                         Description="Restore drills only")["GroupId"]
    secret = sm.create_secret(Name="taly/dev/database/credentials",
                              SecretString=json.dumps({"username": "taly_admin", "password": "m0to-Secret-pw"}))["ARN"]
    rds.create_db_instance(
        DBInstanceIdentifier=PRIMARY, Engine="postgres", EngineVersion="15.10", DBInstanceClass="db.t4g.medium",
        AllocatedStorage=50, MasterUsername="taly_admin", MasterUserPassword="m0to-Secret-pw", DBName=DATABASE,
        BackupRetentionPeriod=7, DBSubnetGroupName=SUBNET_GROUP, VpcSecurityGroupIds=[db_sg], PubliclyAccessible=False,
        MultiAZ=False, DeletionProtection=False, StorageEncrypted=True)
    rds.create_db_instance_read_replica(DBInstanceIdentifier=REPLICA, SourceDBInstanceIdentifier=PRIMARY)
    s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
    described = {i["DBInstanceIdentifier"]: i for i in rds.describe_db_instances()["DBInstances"]}
    return {"url": moto_server, "vpc": vpc, "db_sg": db_sg, "drill_sg": drill_sg, "secret": secret,
            "primary_host": described[PRIMARY]["Endpoint"]["Address"],
            "replica_host": described[REPLICA]["Endpoint"]["Address"]}


@pytest.fixture(scope="module")
def dev_contract(make_contract, cloud):
    """dev_contract(**database): dev's contract naming the seeded records (database fields as given)."""
    def make(**database: object) -> dict:
        return make_contract(
            ENV, vpc_id=cloud["vpc"], buckets={"backups": BUCKET}, cache={"automatic_failover": False},
            database={"primary_endpoint": cloud["primary_host"], "replica_ids": [REPLICA],
                      "replica_endpoints": [cloud["replica_host"]], "master_secret_arn": cloud["secret"],
                      "drill_security_group_id": cloud["drill_sg"], **database})

    return make


def point_at(project, monkeypatch) -> Path:
    """The process environment runs taly in the project, boto3's chain at moto (subprocesses inherit it)."""
    for key, value in project.env.items():
        monkeypatch.setenv(key, value)
    for key in ("AWS_PROFILE", "TALY_LOCAL_STATE"):
        monkeypatch.delenv(key, raising=False)
    return project.root


@pytest.fixture
def project(cloud, dev_contract, make_contract, tmp_path, monkeypatch) -> Path:
    """A project root with contracts/dev.json; the process environment points boto3 at moto."""
    return point_at(make_contract.project(tmp_path, dev_contract(), aws_endpoint=cloud["url"]), monkeypatch)


@pytest.fixture(autouse=True)
def no_drill_instance_left(cloud):
    """Every test leaves no scratch instance behind (a kept one is reaped by the test itself)."""
    yield
    left = [i for i in instance_ids(cloud) if i.startswith("taly-drill-")]
    for iid in left:  # do not let one failure cascade into the next test
        client(cloud, "rds").delete_db_instance(DBInstanceIdentifier=iid, SkipFinalSnapshot=True)
    assert left == [], f"scratch instances left behind: {left}"


def instance_ids(cloud: dict) -> set[str]:
    return {i["DBInstanceIdentifier"] for i in client(cloud, "rds").describe_db_instances()["DBInstances"]}


def describe(cloud: dict, identifier: str) -> dict | None:
    rds = client(cloud, "rds")
    try:
        return rds.describe_db_instances(DBInstanceIdentifier=identifier)["DBInstances"][0]
    except rds.exceptions.DBInstanceNotFoundFault:
        return None


def snapshot_now(cloud: dict, name: str) -> dict:
    return client(cloud, "rds").create_db_snapshot(DBSnapshotIdentifier=name, DBInstanceIdentifier=PRIMARY)["DBSnapshot"]


def dev_audit(taly, root: Path) -> list[dict]:
    """dev's audit log in the project at root."""
    return taly.audit(root / "state" / ENV)


def tags(resource: dict) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in resource.get("TagList") or []}


def assert_unreachable_verification(report: dict) -> None:
    """What a drill against moto must say: it could not verify, naming the endpoint it tried."""
    ver = report["verification"]
    address = f"{report['drill_id']}.aaaaaaaaaa.{REGION}.rds.amazonaws.com:5432"
    assert report["status"] == "failed" and ver["passed"] is False
    assert address in ver["error"] and "cannot connect to the restored instance" in ver["error"], ver["error"]
    assert "inside the VPC" in ver["error"]
    assert report["error"].startswith("verification failed:") and address in report["error"]
    # Never connected: the RTO and the schema were not checked, so not measured (null), not failed (issue 10 item 3).
    assert report["rto_seconds"] is None and report["targets"]["rto_met"] is None
    assert ver["invariants"] == [] and ver["smoke"] == [] and ver["schema_passed"] is None


# --- backups ------------------------------------------------------------------------------------------

def test_snapshot_backup_is_tagged_and_listed_with_the_point_in_time_window(project, cloud, taly):
    result = taly("backup", "create", "--env", ENV, "--kind", "snapshot", "-o", "json")
    assert result.exit_code == 0, result.stderr
    made = taly.json(result)
    assert made["kind"] == "snapshot" and made["status"] == "available" and made["instance_id"] == PRIMARY
    assert re.fullmatch(r"taly-dev-\d{8}t\d{6}-[0-9a-f]{6}", made["snapshot_id"]) and made["backup_id"] == made["snapshot_id"]
    snap = client(cloud, "rds").describe_db_snapshots(DBSnapshotIdentifier=made["snapshot_id"])["DBSnapshots"][0]
    assert snap["DBInstanceIdentifier"] == PRIMARY and snap["SnapshotType"] == "manual"
    assert tags(snap) == {"taly:backup": "true", "taly:created-by": "taly", "environment": ENV}
    audit = [(a["what"], a["outcome"]) for a in dev_audit(taly, project)]
    assert audit == [("backup.create", "requested"), ("backup.create", "ok")]

    asked = dt.datetime.now(dt.timezone.utc)
    listed = taly.json(taly("backup", "list", "--env", ENV, "-o", "json"))
    answered = dt.datetime.now(dt.timezone.utc)
    assert listed["backups"] == []  # no logical backup in the bucket
    mine = [s for s in listed["snapshots"] if s["snapshot_id"] == made["snapshot_id"]]
    assert len(mine) == 1 and mine[0]["type"] == "manual" and mine[0]["created_by_taly"] is True
    assert any(s["type"] == "automated" and s["instance_id"] == PRIMARY for s in listed["snapshots"])
    times = [s["created_at"] for s in listed["snapshots"]]
    assert times == sorted(times)  # oldest first
    pitr = listed["point_in_time"]
    assert pitr["instance_id"] == PRIMARY and pitr["enabled"] is True and pitr["backup_retention_days"] == 7
    latest = dt.datetime.fromisoformat(pitr["latest_restorable_time"])
    # moto's LatestRestorableTime is the time it is asked (to the millisecond, hence the second's slack).
    assert asked - dt.timedelta(seconds=1) <= latest <= answered, (asked, latest, answered)

    table = taly("backup", "list", "--env", ENV, env={"COLUMNS": "200"})
    assert table.exit_code == 0, table.stderr
    assert made["snapshot_id"] in table.stdout and "point in time" in table.stdout and "retention 7 days" in table.stdout


def test_rds_kinds_are_refused_for_the_local_environment_and_unknown_kinds_list_the_allowed(tmp_path, taly):
    state = tmp_path / "no-estate"
    for args in (("backup", "create", "--env", "local", "--kind", "snapshot"),
                 ("drill", "restore", "--env", "local", "--from", "pitr"),
                 ("drill", "restore", "--env", "local", "--from", "snapshot")):
        result = taly(*args, "--state-dir", str(state))
        assert result.exit_code == 2, (args, result.output)
        assert "needs RDS: it is for dev, staging, prod" in result.stderr
        assert "Traceback" not in result.output
    assert not state.exists()
    result = taly("backup", "create", "--env", ENV, "--kind", "rds")
    assert result.exit_code == 2 and "'logical', 'snapshot'" in result.output


# --- drills -------------------------------------------------------------------------------------------

def test_snapshot_drill_with_keep_restores_into_the_drill_security_group_then_reap_removes_it(project, cloud, tmp_path,
                                                                                              taly):
    older = snapshot_now(cloud, "taly-dev-older")
    time.sleep(0.05)
    latest = snapshot_now(cloud, "taly-dev-latest")
    junit = tmp_path / "drill.xml"
    before = instance_ids(cloud)
    result = taly("drill", "restore", "--env", ENV, "--from", "snapshot", "--keep", "--junit", str(junit), "-o", "json")
    assert result.exit_code == 1, result.output
    report = taly.json(result)
    drill_id = report["drill_id"]
    assert DRILL_ID.fullmatch(drill_id), drill_id
    assert report["restore_point_kind"] == "snapshot" and report["snapshot_id"] == "taly-dev-latest" != older["DBSnapshotIdentifier"]
    created = latest["SnapshotCreateTime"].astimezone(dt.timezone.utc)
    started = dt.datetime.fromisoformat(report["started_at"])
    assert dt.datetime.fromisoformat(report["restore_point"]) == created.replace(microsecond=created.microsecond // 1000 * 1000)
    assert report["rpo_seconds"] == pytest.approx((started - created).total_seconds(), abs=0.15)
    assert report["targets"]["rpo_seconds"] == 3600 and report["targets"]["rpo_met"] is True
    assert_unreachable_verification(report)
    assert report["cleanup"]["kept"] is True and f"taly drill reap --env {ENV}" in report["cleanup"]["remove_with"]
    assert instance_ids(cloud) == before | {drill_id}

    # What RDS was asked for, read back from moto.
    inst = describe(cloud, drill_id)
    assert [g["VpcSecurityGroupId"] for g in inst["VpcSecurityGroups"]] == [cloud["drill_sg"]]
    assert inst["DBSubnetGroup"]["DBSubnetGroupName"] == SUBNET_GROUP
    assert inst["PubliclyAccessible"] is False and inst["MultiAZ"] is False and inst["DeletionProtection"] is False
    t = tags(inst)
    assert t["taly:drill"] == "true" and t["taly:drill-id"] == drill_id and t["taly:environment"] == ENV
    assert t["taly:started-at"] == report["started_at"] and t["taly:source-snapshot"] == "taly-dev-latest"
    assert t["taly:kept"] == "true"
    assert report["target"]["host"] == inst["Endpoint"]["Address"]

    # The report is stored like a local drill's, with JUnit beside it; history shows it.
    stored = client(cloud, "s3").get_object(Bucket=BUCKET, Key=f"drills/{drill_id}.json")
    assert json.loads(stored["Body"].read())["restore_point_kind"] == "snapshot"
    suite = ET.parse(junit).getroot()
    failed = {c.get("name") for c in suite.iter("testcase") if c.find("failure") is not None}
    skipped = {c.get("name") for c in suite.iter("testcase") if c.find("skipped") is not None}
    assert "completed" in failed and "rpo" not in failed
    assert {"schema fingerprint", "rto"} <= skipped  # never connected: not checked, so not failed
    history = taly.json(taly("drill", "history", "--env", ENV, "-o", "json"))["drills"]
    assert [(d["drill_id"], d["restore_point_kind"], d["status"]) for d in history if d["drill_id"] == drill_id] == [
        (drill_id, "snapshot", "failed")]

    table = taly("drill", "history", "--env", ENV, env={"COLUMNS": "250"})
    assert table.exit_code == 0 and drill_id in table.stdout and "snapshot" in table.stdout

    reaped = taly("drill", "reap", "--env", ENV, env={"COLUMNS": "250"})
    assert reaped.exit_code == 0, reaped.stderr
    assert f"reaped RDS instance {drill_id} (was available, now gone)" in reaped.stdout
    assert describe(cloud, drill_id) is None
    assert {PRIMARY, REPLICA} <= instance_ids(cloud)
    steps = [(a["what"], a["outcome"]) for a in dev_audit(taly, project)]
    assert steps == [("drill.restore.start", "started"), ("drill.rds.restore", "requested"), ("drill.rds.keep", "kept"),
                     ("drill.restore", "failed"), ("drill.reap", "ok"), ("drill.rds.delete", "ok"),
                     ("drill.reap.rds", "ok")]
    assert not any("m0to-Secret-pw" in line for line in (project / "state" / ENV / "audit.log").read_text().splitlines())


def drill_like(cloud: dict, identifier: str, tag_values: dict[str, str]) -> None:
    """An instance as a drill leaves it (restored from the automated snapshot), with the given tags."""
    rds = client(cloud, "rds")
    auto = rds.describe_db_snapshots(DBInstanceIdentifier=PRIMARY, SnapshotType="automated")["DBSnapshots"]
    rds.restore_db_instance_from_db_snapshot(DBInstanceIdentifier=identifier, DBSnapshotIdentifier=auto[0]["DBSnapshotIdentifier"],
                                             Tags=[{"Key": k, "Value": v} for k, v in tag_values.items()])


def test_reap_deletes_only_tagged_drill_instances_of_the_environment_whose_drill_is_gone(project, cloud, taly):
    host = socket.gethostname()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    started = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=2)).isoformat(timespec="milliseconds")
    leftover, running = "taly-drill-dev-20990101t000000-000001", "taly-drill-dev-20990101t000000-000002"
    untagged, staging, renamed = "taly-drill-dev-20990101t000000-000003", "taly-drill-staging-20990101t000000-000004", "scratch-1"
    from taly_ops.local import supervisor

    me = f"{host}:{os.getpid()}:{supervisor.start_time(os.getpid())}"
    drill = {"taly:drill": "true", "taly:environment": ENV, "taly:started-at": started}
    drill_like(cloud, leftover, {**drill, "taly:owner": f"{host}:{dead.pid}:1"})  # its drill was killed
    drill_like(cloud, running, {**drill, "taly:owner": me})                       # its drill still runs
    drill_like(cloud, untagged, {"taly:environment": ENV})                        # not tagged as a drill
    drill_like(cloud, staging, {**drill, "taly:environment": "staging"})          # another environment's
    drill_like(cloud, renamed, drill)                                             # not named like a drill
    try:
        young = taly.json(taly("drill", "reap", "--env", ENV, "--older-than", "3", "-o", "json"))
        assert young["reaped"] == []
        assert {(s["instance_id"], s["reason"]) for s in young["skipped"]} == {
            (leftover, "younger than 3h"), (running, "younger than 3h")}

        result = taly("drill", "reap", "--env", ENV, "--older-than", "1", "-o", "json")
        assert result.exit_code == 0, result.stderr
        data = taly.json(result)
        assert [(e["kind"], e["instance_id"], e["deleted"], e["status_after"]) for e in data["reaped"]] == [
            ("rds", leftover, True, "gone")]
        assert [(s["instance_id"], s["reason"]) for s in data["skipped"]] == [
            (running, f"its drill (pid {os.getpid()}) is still running")]
        assert describe(cloud, leftover) is None
        assert {running, untagged, staging, renamed, PRIMARY, REPLICA} <= instance_ids(cloud)
        assert taly("drill", "reap", "--env", ENV, "--older-than", "-1").exit_code == 2
    finally:
        for iid in (running, untagged, staging, renamed):
            client(cloud, "rds").delete_db_instance(DBInstanceIdentifier=iid, SkipFinalSnapshot=True)


def test_pitr_drill_fails_verification_and_deletes_its_instance(project, cloud, taly):
    before = instance_ids(cloud)
    result = taly("drill", "restore", "--env", ENV, "--from", "pitr", "-o", "json")
    assert result.exit_code == 1, result.output
    report = taly.json(result)
    assert report["restore_point_kind"] == "pitr" and report["snapshot_id"] is None
    started = dt.datetime.fromisoformat(report["started_at"])
    point = dt.datetime.fromisoformat(report["restore_point"])
    # moto's LatestRestorableTime is "now": read after the drill started (and before it finished), so no data
    # would be lost.
    assert started <= point <= dt.datetime.fromisoformat(report["finished_at"]), (started, point, report["finished_at"])
    assert report["rpo_seconds"] == max(0.0, round((started - point).total_seconds(), 1)) == 0.0
    assert_unreachable_verification(report)
    assert report["cleanup"] == {"kept": False, "instance_existed": True, "instance_id": report["drill_id"],
                                 "deleted": True, "status_after": "gone", "final_snapshot": False,
                                 "automated_backups_deleted": True}
    assert describe(cloud, report["drill_id"]) is None and instance_ids(cloud) == before
    restore = [a for a in dev_audit(taly, project) if a["what"] == "drill.rds.restore"]
    assert restore[0]["inputs"]["call"] == "RestoreDBInstanceToPointInTime"
    assert restore[0]["inputs"]["restore_time"] == report["restore_point"]
    assert restore[0]["inputs"]["security_groups"] == [cloud["drill_sg"]]
    assert "Traceback" not in result.stderr and "holding" not in result.stderr
    assert f"{report['drill_id']} available at" in result.stderr  # progress lines while waiting

    table = taly("drill", "restore", "--env", ENV, "--from", "pitr", env={"COLUMNS": "250"})
    assert table.exit_code == 1
    text = " ".join(table.stdout.split())
    assert "FAILED" in text and "restored RDS point in time" in text and "scratch instance removed" in text and "True" not in text
    assert "error: verification failed: cannot connect to the restored instance" in text
    assert instance_ids(cloud) == before


def test_a_named_snapshot_sets_the_restore_point_and_an_unknown_one_is_exit_2(project, cloud, taly):
    named = snapshot_now(cloud, "taly-dev-named")
    snapshot_now(cloud, "taly-dev-newer")  # not the one asked for
    result = taly("drill", "restore", "--env", ENV, "--from", "taly-dev-named", "-o", "json")
    assert result.exit_code == 1, result.output
    report = taly.json(result)
    assert report["snapshot_id"] == report["backup_id"] == "taly-dev-named"
    created = named["SnapshotCreateTime"].astimezone(dt.timezone.utc)
    assert report["rpo_seconds"] == pytest.approx(
        (dt.datetime.fromisoformat(report["started_at"]) - created).total_seconds(), abs=0.15)
    assert describe(cloud, report["drill_id"]) is None

    before = instance_ids(cloud)
    unknown = taly("drill", "restore", "--env", ENV, "--from", "taly-dev-nope")
    assert unknown.exit_code == 2, unknown.output
    assert "unknown snapshot 'taly-dev-nope'" in unknown.stderr and "snapshot, pitr" in unknown.stderr
    assert instance_ids(cloud) == before
    assert not any(a["what"] == "drill.rds.restore" and a["inputs"]["snapshot_id"] == "taly-dev-nope" for a in dev_audit(taly, project))


def test_a_target_identifier_that_is_a_source_is_refused_before_anything_is_created(project, cloud, monkeypatch,
                                                                                    taly):
    from taly_ops.operations.drills import rds as rds_drill

    before = {i: describe(cloud, i)["DBInstanceStatus"] for i in (PRIMARY, REPLICA)}
    for source in (PRIMARY, REPLICA.upper()):
        monkeypatch.setattr(rds_drill, "new_drill_id", lambda env, t, source=source: source)
        result = taly("drill", "restore", "--env", ENV, "--from", "snapshot")
        assert result.exit_code == 2, result.output
        assert f"the drill's target instance {source} is a source of {ENV}" in result.stderr
    assert {i: describe(cloud, i)["DBInstanceStatus"] for i in (PRIMARY, REPLICA)} == before
    assert not (project / "state" / ENV / "audit.log").exists()  # nothing was attempted


@pytest.mark.parametrize("keep", [(), ("--keep",)], ids=["", "keep"])
def test_a_restored_endpoint_that_is_a_source_endpoint_is_refused_and_deleted(cloud, tmp_path, monkeypatch, keep, taly,
                                                                             make_contract, dev_contract):
    """Deleted even with --keep: the refusal is exit 2, with the instance deleted."""
    from taly_ops.operations.drills import rds as rds_drill

    fixed = "taly-drill-dev-20990101t000000-abcdef"
    # A contract whose replica endpoint is where the scratch instance will answer.
    scratch_endpoint = f"{fixed}.aaaaaaaaaa.{REGION}.rds.amazonaws.com"
    point_at(make_contract.project(tmp_path, dev_contract(replica_endpoints=[scratch_endpoint]), aws_endpoint=cloud["url"]),
             monkeypatch)
    monkeypatch.setattr(rds_drill, "new_drill_id", lambda env, t: fixed)
    result = taly("drill", "restore", "--env", ENV, "--from", "snapshot", *keep)
    assert result.exit_code == 2, result.output
    assert f"the restored endpoint {fixed}.aaaaaaaaaa.{REGION}.rds.amazonaws.com:5432 is the endpoint of {REPLICA}" in result.stderr
    assert describe(cloud, fixed) is None  # created, refused, deleted
    assert any(a["what"] == "drill.rds.delete" and a["inputs"]["instance_id"] == fixed for a in dev_audit(taly, tmp_path))


def test_an_rds_dry_run_picks_the_restore_point_and_creates_nothing(project, cloud, taly):
    snapshot_now(cloud, "taly-dev-dry")
    before = instance_ids(cloud)
    result = taly("drill", "restore", "--env", ENV, "--from", "snapshot", "--dry-run", "-o", "json")
    assert result.exit_code == 0, result.output
    report = taly.json(result)
    assert report["status"] == "dry-run" and report["snapshot_id"] == "taly-dev-dry"
    assert any("drill security group" in step or "security group" in step for step in report["would"])
    assert instance_ids(cloud) == before


def test_port_is_refused_for_rds_drills(project, taly):
    result = taly("drill", "restore", "--env", ENV, "--from", "snapshot", "--port", "6543")
    assert result.exit_code == 2 and "--port is for logical drills" in result.stderr


def test_a_missing_contract_is_exit_2_and_creates_nothing(project, cloud, taly):
    before = instance_ids(cloud)
    for args in (("drill", "restore", "--env", "staging", "--from", "snapshot"),
                 ("backup", "create", "--env", "staging", "--kind", "snapshot"),
                 ("drill", "reap", "--env", "staging")):
        result = taly(*args)
        assert result.exit_code == 2, (args, result.output)
        assert "no contract for staging" in result.stderr and "pulumi stack output --stack staging" in result.stderr
    assert instance_ids(cloud) == before


def test_an_unreachable_aws_endpoint_is_exit_3(project, cloud, monkeypatch, taly):
    from taly_ops.adapters.aws import Aws, AwsTarget

    gone = f"127.0.0.1:{supervisor.free_port()}"
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://{gone}")
    before = instance_ids(cloud)
    for args in (("drill", "restore", "--env", ENV, "--from", "snapshot"), ("drill", "restore", "--env", ENV, "--from", "pitr"),
                 ("backup", "create", "--env", ENV, "--kind", "snapshot"), ("backup", "list", "--env", ENV),
                 ("drill", "reap", "--env", ENV)):
        result = taly(*args)
        assert result.exit_code == 3, (args, result.output)
        assert result.stderr.startswith("error: ") and "Traceback" not in result.output
        assert f'Could not connect to the endpoint URL: "http://{gone}/' in result.stderr, (args, result.stderr)
    # What bounds how long that takes (a bound, not a stopwatch): the operations' clients make at most four
    # attempts (botocore counts the adapter's max_attempts=3 as retries), giving up on a connection after 5 s.
    config = Aws(AwsTarget(REGION)).client("rds").meta.config
    assert (config.retries["total_max_attempts"], config.connect_timeout) == (4, 5), (config.retries, config.connect_timeout)
    # Secrets Manager and S3 answer, RDS does not (boto3's per-service endpoint variable): the RDS calls' own errors.
    monkeypatch.setenv("AWS_ENDPOINT_URL", cloud["url"])
    monkeypatch.setenv("AWS_ENDPOINT_URL_RDS", f"http://127.0.0.1:{supervisor.free_port()}")
    for args in (("drill", "restore", "--env", ENV, "--from", "snapshot"), ("backup", "create", "--env", ENV, "--kind", "snapshot"),
                 ("backup", "list", "--env", ENV), ("drill", "reap", "--env", ENV)):
        result = taly(*args)
        assert result.exit_code == 3, (args, result.output)
        assert result.stderr.startswith("error: RDS did not answer") and "Traceback" not in result.output
    assert instance_ids(cloud) == before


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_while_the_instance_is_up_deletes_it(project, cloud, sig, taly):
    proc = subprocess.Popen(taly.held("verify", 60, "drill", "restore", "--env", ENV, "--from", "snapshot",
                                                "-o", "json"), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stderr.readline, "")), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 60
        while not any("holding" in line for line in lines):
            assert proc.poll() is None, "".join(lines)
            assert time.monotonic() < deadline, "the drill never reached its hold: " + "".join(lines)
            time.sleep(0.05)
        drill_id = re.search(r"drill (taly-drill-dev-\S+):", "".join(lines)).group(1)
        inst = describe(cloud, drill_id)
        assert inst is not None and inst["DBInstanceStatus"] == "available"
        assert tags(inst)["taly:owner"].split(":")[1] == str(proc.pid)
        proc.send_signal(sig)
        proc.wait(timeout=60)  # stderr is the reader thread's; stdout stays empty (no report is printed)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    reader.join(timeout=5)
    err = "".join(lines)
    assert proc.stdout.read() == ""
    assert proc.returncode == 128 + sig, err
    assert f"interrupted by {sig.name}" in err and "Traceback" not in err
    assert describe(cloud, drill_id) is None
    stored = json.loads(client(cloud, "s3").get_object(Bucket=BUCKET, Key=f"drills/{drill_id}.json")["Body"].read())
    assert stored["error"] == f"interrupted by {sig.name}" and stored["cleanup"]["deleted"] is True
    assert [a["outcome"] for a in dev_audit(taly, project) if a["what"] == "drill.restore"] == ["interrupted"]


def test_help_explains_the_local_and_cloud_kinds(taly):
    for args, words in ((("drill", "restore", "--help"), ("snapshot", "pitr", "latest", "dev, staging", "--keep")),
                        (("backup", "create", "--help"), ("--kind", "logical", "snapshot", "local")),
                        (("drill", "reap", "--help"), ("taly:drill=true",))):
        result = taly(*args, env={"COLUMNS": "200"})
        assert result.exit_code == 0
        text = " ".join(result.stdout.split())
        assert all(w in text for w in words), (args, [w for w in words if w not in text])


# --- a signal during the restore call; drills of other hosts ---------------------------------------------

def _interrupted_during_the_restore_call(monkeypatch, *, creates: bool, lagging_describes: int) -> dict:
    """RestoreDBInstanceFromDBSnapshot is sent (creating the instance in moto, or not yet), then SIGTERM
    arrives before the call returns; the next `lagging_describes` describes of it find nothing yet."""
    from taly_ops.adapters import rds as rds_api
    from taly_ops.errors import Interrupted
    from taly_ops.operations.drills import rds as rds_drill

    real_restore, real_instance = rds_api.restore_from_snapshot, rds_api.instance
    seen = {"sent": False, "lagged": 0, "target": None}

    def restore(client, target_id, snapshot_id, settings):
        seen["sent"], seen["target"] = True, target_id
        if creates:
            real_restore(client, target_id, snapshot_id, settings)
        raise Interrupted(signal.SIGTERM)

    def instance(client, identifier):
        if seen["sent"] and identifier == seen["target"] and seen["lagged"] < lagging_describes:
            seen["lagged"] += 1
            return None
        return real_instance(client, identifier)

    monkeypatch.setattr(rds_api, "restore_from_snapshot", restore)
    monkeypatch.setattr(rds_api, "instance", instance)
    monkeypatch.setattr(rds_drill, "TEARDOWN_SETTLE_POLL", 0.02)
    return seen


def test_a_signal_during_the_restore_call_waits_for_the_instance_describe_lags_behind_then_deletes_it(
        project, cloud, monkeypatch, taly):
    snapshot_now(cloud, "taly-dev-lag")
    seen = _interrupted_during_the_restore_call(monkeypatch, creates=True, lagging_describes=3)
    before = instance_ids(cloud)
    result = taly("drill", "restore", "--env", ENV, "--from", "snapshot", "-o", "json")
    assert result.exit_code == 128 + signal.SIGTERM, result.output
    drill_id = seen["target"]
    assert seen["lagged"] == 3 and describe(cloud, drill_id) is None and instance_ids(cloud) == before
    assert "interrupted by SIGTERM: the scratch instance was torn down" in result.stderr
    assert "not described yet although its restore was requested" in result.stderr
    stored = json.loads(client(cloud, "s3").get_object(Bucket=BUCKET, Key=f"drills/{drill_id}.json")["Body"].read())
    assert stored["cleanup"]["instance_existed"] is True and stored["cleanup"]["deleted"] is True


def test_an_instance_never_described_after_the_restore_call_is_reported_not_found_not_removed(
        project, cloud, monkeypatch, taly):
    from taly_ops.operations.drills import rds as rds_drill

    snapshot_now(cloud, "taly-dev-never")
    monkeypatch.setattr(rds_drill, "TEARDOWN_SETTLE_SECONDS", 0.2)
    seen = _interrupted_during_the_restore_call(monkeypatch, creates=False, lagging_describes=0)
    result = taly("drill", "restore", "--env", ENV, "--from", "snapshot", "-o", "json")
    assert result.exit_code == 128 + signal.SIGTERM, result.output
    drill_id = seen["target"]
    message = f"{drill_id} not found after 0s; its restore was requested, so it may still appear: run taly drill reap --env {ENV}"
    assert f"interrupted by SIGTERM: the scratch instance may be left: {message}" in result.stderr
    assert "torn down" not in result.stderr
    stored = json.loads(client(cloud, "s3").get_object(Bucket=BUCKET, Key=f"drills/{drill_id}.json")["Body"].read())
    assert stored["cleanup"] == {"kept": False, "instance_existed": None, "deleted": False, "instance_id": drill_id,
                                 "error": message, "remove_with": f"taly drill reap --env {ENV}"}
    assert [a["outcome"] for a in dev_audit(taly, project) if a["what"] == "drill.rds.delete"] == ["not-found"]


def test_reap_leaves_a_young_instance_of_another_hosts_drill_unless_forced(project, cloud, taly):
    from taly_ops.operations.drills import rds_reap as rds_drill

    assert rds_drill.OTHER_HOST_DRILL_HOURS == 3
    ago = lambda hours: (dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=hours)).isoformat(timespec="milliseconds")
    drill = {"taly:drill": "true", "taly:environment": ENV, "taly:owner": "ops-runner-2.internal:4242:987654"}
    young, old = "taly-drill-dev-20990101t000000-000011", "taly-drill-dev-20990101t000000-000012"
    drill_like(cloud, young, {**drill, "taly:started-at": ago(1)})  # may still be running over there
    drill_like(cloud, old, {**drill, "taly:started-at": ago(4)})    # longer than any drill runs
    reason = "owned by ops-runner-2.internal, may still be running; pass --older-than 0 --force to remove"
    try:
        data = taly.json(taly("drill", "reap", "--env", ENV, "-o", "json"))
        assert [(e["instance_id"], e["deleted"]) for e in data["reaped"]] == [(old, True)]
        assert [(s["instance_id"], s["reason"]) for s in data["skipped"]] == [(young, reason)]
        assert describe(cloud, young) is not None and describe(cloud, old) is None
        table = taly("drill", "reap", "--env", ENV, "--older-than", "0.5", env={"COLUMNS": "250"})
        assert table.exit_code == 0 and f"skipped {young}: {reason}" in table.stdout

        forced = taly("drill", "reap", "--env", ENV, "--older-than", "0", "--force", "-o", "json")
        assert forced.exit_code == 0, forced.stderr
        assert [(e["instance_id"], e["deleted"]) for e in taly.json(forced)["reaped"]] == [(young, True)]
        assert describe(cloud, young) is None and {PRIMARY, REPLICA} <= instance_ids(cloud)
        assert [a["inputs"]["force"] for a in dev_audit(taly, project) if a["what"] == "drill.reap.rds"] == [False, False, True]
    finally:
        for iid in (young, old):
            if describe(cloud, iid) is not None:
                client(cloud, "rds").delete_db_instance(DBInstanceIdentifier=iid, SkipFinalSnapshot=True)


def test_reap_help_explains_force(taly):
    from taly_ops.operations.drills import rds_reap as rds_drill

    result = taly("drill", "reap", "--help", env={"COLUMNS": "200"})
    text = " ".join(result.stdout.split())
    assert result.exit_code == 0 and "--force" in text
    assert f"another host less than {rds_drill.OTHER_HOST_DRILL_HOURS:g} h ago" in text  # the help's figure is the constant's
