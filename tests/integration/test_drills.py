"""`taly backup` and `taly drill` against a real local estate (PostgreSQL primary + replica, moto S3).

The session's shared estate (conftest.py `local_estate`), left as each test found it: a row changed is
changed back, a damaged backup is removed, and the deleted backups bucket comes back with moto, stopped and
started again by `taly local up` (`heal_estate`). A drill killed before `taly local down` is in
test_local_estate.py, on the estate that goes down there.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from taly_ops.local import aws_emulator, postgres, supervisor
from taly_ops.local.state import State, load

pytestmark = pytest.mark.integration


@pytest.fixture
def local(local_estate) -> State:
    return local_estate


@pytest.fixture
def cli(taly, local):
    """`taly ... --env local --state-dir <the shared estate>`."""
    return taly.local(local)


def staging_project(make_contract, public_dir, local: State, root: Path | None = None):
    """A project whose contracts/staging.json is the local estate's contract renamed: its database reached over
    TLS (sslmode=require, as RDS forces), its credentials read from the emulator's Secrets Manager."""
    return make_contract.project(root or public_dir("taly-drill-project-"), make_contract.from_estate(local, "staging"),
                                 aws_endpoint=local.endpoints["aws"]["endpoint_url"])


def test_backup_then_drill_passes_with_per_table_verification(local, cli, backups, tmp_path, drill_processes):
    audited = len(cli.audit(local.state_dir))
    m = backups.create(local)
    assert m["source"]["role"] == "replica"  # never the write endpoint
    assert m["source"]["port"] == local.endpoints["postgres"]["replica"]["port"]
    assert sum(t["rows"] for t in m["tables"].values()) == local.size
    assert m["files"] and all(len(f["sha256"]) == 64 and f["size"] > 0 for f in m["files"])
    assert m["schema"]["fingerprint"] and m["tool_versions"]["pg_dump"].startswith("pg_dump")
    listing = backups.s3(local).list_objects_v2(Bucket=backups.bucket(local), Prefix=f"backups/{m['backup_id']}/")
    keys = {o["Key"] for o in listing["Contents"]}
    assert f"backups/{m['backup_id']}/manifest.json" in keys
    assert {f"backups/{m['backup_id']}/dump/{f['path']}" for f in m["files"]} <= keys

    listed = cli.json(cli("backup", "list", "-o", "json"))["backups"]
    assert m["backup_id"] in {b["backup_id"] for b in listed}

    junit = tmp_path / "reports" / "ci" / "drill.xml"  # a directory that does not exist yet (issue 10 item 16)
    result = cli("drill", "restore", "--from", m["backup_id"], "--junit", junit, "-o", "json")
    assert result.exit_code == 0, result.stdout + result.stderr
    assert f"JUnit XML written to {junit} (created {junit.parent})" in result.stderr, result.stderr
    report = cli.json(result)
    assert report["status"] == "passed" and report["backup_id"] == m["backup_id"]
    ver = report["verification"]
    assert ver["passed"] and ver["schema_passed"] and ver["files_passed"]
    assert len(ver["tables"]) == len(m["tables"]) == 9
    for t in ver["tables"]:
        assert t["passed"] and t["rows"] == t["expected_rows"] and t["checksum"] == t["expected_checksum"], t
    assert ver["invariants"] and all(i["passed"] and i["violations"] == 0 for i in ver["invariants"])
    assert ver["smoke"] and all(s["passed"] for s in ver["smoke"])
    # RPO: from the backup's snapshot to the drill's start; RTO: the restore path (download, a fresh instance,
    # pg_restore, verification), within the drill's whole run.
    started, point = (dt.datetime.fromisoformat(report[k]) for k in ("started_at", "restore_point"))
    assert report["restore_point"] == m["snapshot"]["at"] and started > point
    assert report["rpo_seconds"] == pytest.approx((started - point).total_seconds(), abs=0.11)
    path = sum(report["timings"][f"{step}_seconds"] for step in ("download", "instance", "restore", "verify"))
    assert 0 < path <= report["rto_seconds"] + 0.05 and report["rto_seconds"] <= report["timings"]["total_seconds"]
    # Known, and small (autovacuum's ANALYZE of the freshly loaded tables may commit after the backup).
    assert report["source_last_write"]["missed_seconds"] is not None and report["source_last_write"]["error"] is None
    assert report["targets"]["rpo_seconds"] == 3600 and report["targets"]["rto_seconds"] == 900
    assert report["targets"]["rpo_met"] and report["targets"]["rto_met"]
    print(f"\ntimings: backup {m['duration_seconds']}s {m.get('timings')}, drill {report['timings']}, "
          f"RTO {report['rto_seconds']}s", file=sys.stderr)

    # Cleanup: no process, no directory, no registry entry.
    assert report["cleanup"]["dir_removed"] and report["cleanup"]["instance_stopped"] and not report["cleanup"]["kept"]
    assert drill_processes(report["drill_id"]) == []
    assert not (local.state_dir / "drills" / report["drill_id"]).exists()
    assert report["drill_id"] not in cli.drill_registry(local.state_dir)
    assert not supervisor.port_open(report["target"]["port"])

    suite = ET.parse(junit).getroot()
    assert suite.tag == "testsuite" and suite.get("failures") == "0"
    names = {c.get("name") for c in suite.iter("testcase")}
    assert {"public.tenants", "rpo", "rto", "schema fingerprint"} <= names

    history = cli.json(cli("drill", "history", "-o", "json"))["drills"]
    assert any(d["drill_id"] == report["drill_id"] and d["status"] == "passed" for d in history)

    audit = cli.audit(local.state_dir)[audited:]  # this test's entries (the estate is shared)
    whats = [a["what"] for a in audit]
    assert "backup.create" in whats and "drill.restore" in whats
    assert all(a["who"] and a["environment"] == "local" for a in audit)
    raw = (local.state_dir / "audit.log").read_text()
    assert local.endpoints["postgres"]["primary"]["password"] not in raw


def test_row_changed_after_the_backup_still_verifies_against_the_restore_point(local, cli, backups, estate_db):
    m = backups.create(local)
    before = m["tables"]["public.tenants"]
    primary = estate_db.conninfo(local)
    postgres._query(primary, "UPDATE tenants SET name = name || ' (renamed)' WHERE id = 1")
    try:
        estate_db.wait_replica(local)
        assert "renamed" in postgres._query(estate_db.conninfo(local, "replica"),
                                            "SELECT name FROM tenants WHERE id = 1")[0][0]

        result = cli("drill", "restore", "--from", m["backup_id"], "-o", "json")
        assert result.exit_code == 0, result.stdout + result.stderr
        report = cli.json(result)
        tenants = next(t for t in report["verification"]["tables"] if t["table"] == "public.tenants")
        assert tenants["checksum"] == before["checksum"] and tenants["passed"]
        # The source wrote after the restore point: the report says when, and how much a restore would miss.
        last = report["source_last_write"]
        assert last["how"] == "pg_last_committed_xact()" and last["error"] is None, last
        assert last["at"] > report["restore_point"] and last["missed_seconds"] > 0
        table = cli("drill", "restore", "--from", m["backup_id"])
        assert table.exit_code == 0 and "would miss" in table.stdout and "of writes" in table.stdout, table.stdout
        # ... and the source has moved on: a newer backup has a different checksum.
        assert backups.create(local)["tables"]["public.tenants"]["checksum"] != before["checksum"]
    finally:
        postgres._query(primary, "UPDATE tenants SET name = left(name, -length(' (renamed)')) "
                                 "WHERE id = 1 AND right(name, length(' (renamed)')) = ' (renamed)'")
        estate_db.wait_replica(local)
    assert backups.create(local)["tables"]["public.tenants"]["checksum"] == before["checksum"]  # as it was


def test_a_flipped_byte_in_the_bucket_fails_naming_the_file(local, cli, backups, tmp_path, drill_processes):
    m = backups.create(local)
    try:
        victim = next(f for f in m["files"] if f["path"].endswith(".dat.gz") and f["size"] > 1000)
        backups.flip_byte(local, f"backups/{m['backup_id']}/dump/{victim['path']}")

        junit = tmp_path / "failed.xml"
        result = cli("drill", "restore", "--from", m["backup_id"], "--junit", junit, "-o", "json")
        assert result.exit_code == 1, result.stdout + result.stderr
        report = cli.json(result)
        assert report["status"] == "failed" and not report["verification"]["passed"]
        bad = [f for f in report["verification"]["files"] if not f["passed"]]
        assert [f["file"] for f in bad] == [victim["path"]] and bad[0]["problem"] == "sha256 mismatch"
        assert victim["path"] in report["error"]
        assert report["cleanup"]["dir_removed"] and drill_processes(report["drill_id"]) == []
        suite = ET.parse(junit).getroot()
        assert int(suite.get("failures")) >= 1
        failed = [c.get("name") for c in suite.iter("testcase") if c.find("failure") is not None]
        assert victim["path"] in failed

        table = cli("drill", "restore", "--from", m["backup_id"])
        assert table.exit_code == 1 and victim["path"] in table.stdout
    finally:
        backups.remove(local, m["backup_id"])


def test_unknown_backup_id_is_bad_input(cli):
    result = cli("drill", "restore", "--from", "19990101T000000Z-000000")
    assert result.exit_code == 2
    assert "unknown backup id" in result.stderr


def test_a_target_that_is_a_source_is_refused(local, cli):
    for role in ("primary", "replica"):
        port = local.endpoints["postgres"][role]["port"]
        result = cli("drill", "restore", "--port", port)
        assert result.exit_code == 2, result.stdout + result.stderr
        assert "source endpoint" in result.stderr


def test_a_cloud_environment_backs_up_and_drills_through_its_contract(local, taly, make_contract, public_dir):
    project = staging_project(make_contract, public_dir, local)
    created = taly("backup", "create", "--env", "staging", "-o", "json", env=project.env)
    assert created.exit_code == 0, created.stderr
    m = taly.json(created)
    replica = local.endpoints["postgres"]["replica"]
    assert m["environment"] == "staging" and m["source"]["role"] == "replica"
    assert (m["source"]["host"], m["source"]["port"]) == (replica["host"], replica["port"])

    drilled = taly("drill", "restore", "--env", "staging", "--from", m["backup_id"], "-o", "json", env=project.env)
    report = taly.json(drilled)
    assert drilled.exit_code == 0 and report["status"] == "passed", report["error"]
    # The targets are the contract's (the stack's BackupConfig), not the local defaults.
    assert report["targets"]["rpo_seconds"] == local.contract["backup"]["rpo_minutes"] * 60
    assert "staging contract" in report["targets"]["source"]
    audit = taly.audit(project.state / "staging")
    assert [(a["what"], a["outcome"]) for a in audit][-1] == ("drill.restore", "passed")
    assert not any(local.endpoints["postgres"]["primary"]["password"] in line
                   for line in (project.state / "staging" / "audit.log").read_text().splitlines())


def test_a_cloud_environment_without_a_contract_is_bad_input(local, taly, make_contract, public_dir, tmp_path):
    project = staging_project(make_contract, public_dir, local, root=tmp_path)
    result = taly("backup", "create", "--env", "prod", env=project.env)
    assert result.exit_code == 2 and "no contract for prod" in result.stderr
    assert not (tmp_path / "state" / "prod").exists()


def test_keep_leaves_the_instance_for_reap(local, cli, backups, drill_processes):
    backups.create(local)  # the latest one, whatever ran before
    result = cli("drill", "restore", "--keep", "-o", "json")
    assert result.exit_code == 0, result.stdout + result.stderr
    report = cli.json(result)
    assert report["cleanup"]["kept"] and "taly drill reap" in report["cleanup"]["remove_with"]
    assert supervisor.port_open(report["target"]["port"])
    assert drill_processes(report["drill_id"])

    reaped = cli.json(cli("drill", "reap", "-o", "json"))
    assert [r["drill_id"] for r in reaped["reaped"]] == [report["drill_id"]]
    assert drill_processes(report["drill_id"]) == [] and not supervisor.port_open(report["target"]["port"])
    assert cli.json(cli("drill", "reap", "-o", "json"))["reaped"] == []


def test_sigterm_during_the_drill_tears_the_instance_down(local, cli, backups, wait_for_scratch, drill_processes):
    m = backups.create(local)
    proc = subprocess.Popen(cli.held("restore", 30, "drill", "restore", "--env", "local", "--state-dir",
                                     local.state_dir, "--from", m["backup_id"], "-o", "json"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        entry = wait_for_scratch(proc, lambda: cli.drill_registry(local.state_dir), timeout=30)
        assert supervisor.alive(entry["pid"], entry["start_time"])
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert "SIGTERM" in err
    assert not supervisor.alive(entry["pid"], entry["start_time"])
    assert drill_processes(entry["drill_id"]) == []
    assert not Path(entry["dir"]).exists()
    assert entry["drill_id"] not in cli.drill_registry(local.state_dir)
    assert cli.json(cli("drill", "reap", "-o", "json"))["reaped"] == []
    audit = cli.audit(local.state_dir)
    assert any(a["what"] == "drill.restore" and a["outcome"] == "interrupted" for a in audit)


def test_a_state_dir_the_server_cannot_enter_is_bad_input_before_anything_starts(local, taly, make_contract,
                                                                                   public_dir, tmp_path):
    """As root, PostgreSQL runs as `postgres`, which cannot enter pytest's tmp dirs (mode 700)."""
    project = staging_project(make_contract, public_dir, local, root=tmp_path)
    created = taly("backup", "create", "--env", "staging", "-o", "json", env=project.env)
    assert created.exit_code == 0, created.stderr
    result = taly("drill", "restore", "--env", "staging", "-o", "json", env=project.env)
    if os.geteuid() == 0:
        assert result.exit_code == 2 and "the scratch instance cannot run in" in result.stderr, result.stderr
        assert "TALY_STATE_DIR" in result.stderr
        assert not list((tmp_path / "state" / "staging").glob("drills/drill-*"))
    else:  # the server runs as this user: nothing to refuse
        assert result.exit_code == 0, result.stderr


def test_a_dry_run_resolves_and_checks_but_starts_nothing(local, cli, backups):
    """validate -> plan -> execute: --dry-run stops after the plan (issue 9)."""
    m = backups.create(local)
    audit_before = (local.state_dir / "audit.log").read_text()
    s3, bucket = backups.s3(local), backups.bucket(local)
    drills_before = {o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="drills/").get("Contents", [])}
    result = cli("drill", "restore", "--from", m["backup_id"], "--dry-run", "-o", "json")
    assert result.exit_code == 0, result.stderr
    report = cli.json(result)
    assert report["status"] == "dry-run" and report["backup_id"] == m["backup_id"]
    assert any("pg_restore" in step for step in report["would"]) and report["rto_seconds"] is None
    assert not supervisor.port_open(report["target"]["port"])
    assert report["drill_id"] not in cli.drill_registry(local.state_dir)
    assert not (local.state_dir / "drills" / report["drill_id"]).exists()
    assert (local.state_dir / "audit.log").read_text() == audit_before  # nothing mutated, nothing audited
    after = {o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="drills/").get("Contents", [])}
    assert after == drills_before
    table = cli("drill", "restore", "--from", m["backup_id"], "--dry-run")
    assert table.exit_code == 0 and "DRY RUN" in table.stdout and "would restore" in table.stdout


def test_a_damaged_manifest_spoils_only_its_own_backup(local, cli, backups):
    """Issue 10 item 1: a truncated manifest.json is listed as damaged; drilling it is exit 1 naming the object."""
    intact = backups.create(local)
    damaged = backups.create(local)
    try:
        key = f"backups/{damaged['backup_id']}/manifest.json"
        backups.truncate(local, key)

        listed = cli("backup", "list", "-o", "json")
        assert listed.exit_code == 0, listed.stderr
        data = cli.json(listed)
        assert damaged["backup_id"] not in {b["backup_id"] for b in data["backups"]}
        assert intact["backup_id"] in {b["backup_id"] for b in data["backups"]}
        assert [(d["backup_id"], d["key"]) for d in data["damaged"]] == [
            (damaged["backup_id"], f"s3://{backups.bucket(local)}/{key}")]
        assert "not valid JSON" in data["damaged"][0]["reason"]
        table = cli("backup", "list")
        assert table.exit_code == 0 and f"damaged {damaged['backup_id']}" in table.stdout, table.stdout

        drilled = cli("drill", "restore", "--from", damaged["backup_id"], "-o", "json")
        assert drilled.exit_code == 1, drilled.stdout + drilled.stderr
        assert key in drilled.stderr and "internal error" not in drilled.stderr

        latest = cli("drill", "restore", "-o", "json")  # the newest intact backup
        assert latest.exit_code == 0, latest.stdout + latest.stderr
        assert cli.json(latest)["backup_id"] == intact["backup_id"]
    finally:
        backups.remove(local, damaged["backup_id"])


def test_a_missing_backups_bucket_is_unreachable(local, cli, backups, heal_estate):
    """Deletes the estate's backups bucket; healed by moto stopped and started again (`taly local up` seeds it
    afresh: the bucket is back, empty)."""
    client, name = backups.s3(local), backups.bucket(local)
    try:
        for page in client.get_paginator("list_object_versions").paginate(Bucket=name):
            for v in page.get("Versions", []) + page.get("DeleteMarkers", []):
                client.delete_object(Bucket=name, Key=v["Key"], VersionId=v["VersionId"])
        client.delete_bucket(Bucket=name)
        for args in (("drill", "restore"), ("backup", "list"), ("backup", "create"), ("drill", "history")):
            result = cli(*args)
            assert result.exit_code == 3, (args, result.stdout, result.stderr)
            assert name in result.stderr
    finally:
        aws_emulator.stop(load(local.state_dir).component("moto"))
        assert heal_estate(local) == ["moto"]
    assert cli.json(cli("backup", "list", "-o", "json"))["backups"] == []  # the bucket is back
