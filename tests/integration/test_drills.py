"""`taly backup` and `taly drill` against a real local estate (PostgreSQL primary + replica, moto S3).

One estate for the module, in a world-searchable dir under /tmp (as root, PostgreSQL runs as
`postgres`, which cannot enter pytest's tmp dirs); the finalizer takes it down. The test that deletes
the backups bucket runs last.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from typer.testing import CliRunner

from taly_ops.app import app
from taly_ops.local import aws_emulator, postgres, supervisor
from taly_ops.local.state import State

import hooked_taly  # noqa: E402
from estate_fixture import start_local_estate, wait_for_scratch  # noqa: E402

pytestmark = pytest.mark.integration

SIZE = 10_000


def _reap_kept_drills(state_dir: Path) -> None:
    """A failed test may have left a kept scratch instance: reap it before the estate goes down."""
    from taly_ops.operations import drills

    drills.reap(drills.ScratchHost("local", state_dir))


@pytest.fixture(scope="module")
def local(request):
    return start_local_estate(request, "taly-drill-test-", SIZE, before_down=_reap_kept_drills)


def taly(local: State, *args: str):
    result = CliRunner().invoke(app, [*args, "--env", "local", "--state-dir", str(local.state_dir)])
    return result


def as_json(result) -> dict:
    assert result.stdout.strip(), result.stderr
    return json.loads(result.stdout)


def backup(local: State) -> dict:
    result = taly(local, "backup", "create", "-o", "json")
    assert result.exit_code == 0, result.stderr
    return as_json(result)


def s3(local: State):
    return aws_emulator.client("s3", local.endpoints["aws"]["endpoint_url"])


def bucket(local: State) -> str:
    return local.contract["buckets"]["backups"]


def _pg(local: State, role: str) -> str:
    e = local.endpoints["postgres"][role]
    return postgres.conninfo(e["host"], e["port"], e["password"])


def drill_processes(drill_id: str) -> list[int]:
    """Pids of processes whose command line mentions the drill (its postgres runs from a dir named after it)."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cmd = Path(f"/proc/{entry}/cmdline").read_bytes()
            except OSError:
                continue
            if drill_id.encode() in cmd and supervisor.alive(int(entry)):
                pids.append(int(entry))
    return pids


def registry(local: State) -> dict:
    path = local.state_dir / "drills" / "registry.json"
    try:
        return json.loads(path.read_text())["drills"]
    except (FileNotFoundError, ValueError):
        return {}


def test_backup_then_drill_passes_with_per_table_verification(local, tmp_path):
    m = backup(local)
    assert m["source"]["role"] == "replica"  # never the write endpoint
    assert m["source"]["port"] == local.endpoints["postgres"]["replica"]["port"]
    assert sum(t["rows"] for t in m["tables"].values()) == SIZE
    assert m["files"] and all(len(f["sha256"]) == 64 and f["size"] > 0 for f in m["files"])
    assert m["schema"]["fingerprint"] and m["tool_versions"]["pg_dump"].startswith("pg_dump")
    keys = {o["Key"] for o in s3(local).list_objects_v2(Bucket=bucket(local), Prefix=f"backups/{m['backup_id']}/")["Contents"]}
    assert f"backups/{m['backup_id']}/manifest.json" in keys
    assert {f"backups/{m['backup_id']}/dump/{f['path']}" for f in m["files"]} <= keys

    listed = as_json(taly(local, "backup", "list", "-o", "json"))["backups"]
    assert m["backup_id"] in {b["backup_id"] for b in listed}

    junit = tmp_path / "reports" / "ci" / "drill.xml"  # a directory that does not exist yet (issue 10 item 16)
    result = taly(local, "drill", "restore", "--from", m["backup_id"], "--junit", str(junit), "-o", "json")
    assert result.exit_code == 0, result.stdout + result.stderr
    assert f"JUnit XML written to {junit} (created {junit.parent})" in result.stderr, result.stderr
    report = as_json(result)
    assert report["status"] == "passed" and report["backup_id"] == m["backup_id"]
    ver = report["verification"]
    assert ver["passed"] and ver["schema_passed"] and ver["files_passed"]
    assert len(ver["tables"]) == len(m["tables"]) == 9
    for t in ver["tables"]:
        assert t["passed"] and t["rows"] == t["expected_rows"] and t["checksum"] == t["expected_checksum"], t
    assert ver["invariants"] and all(i["passed"] and i["violations"] == 0 for i in ver["invariants"])
    assert ver["smoke"] and all(s["passed"] for s in ver["smoke"])
    assert 0 <= report["rpo_seconds"] < 600 and 0 < report["rto_seconds"] < 120
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
    assert report["drill_id"] not in registry(local)
    assert not supervisor.port_open(report["target"]["port"])

    suite = ET.parse(junit).getroot()
    assert suite.tag == "testsuite" and suite.get("failures") == "0"
    names = {c.get("name") for c in suite.iter("testcase")}
    assert {"public.tenants", "rpo", "rto", "schema fingerprint"} <= names

    history = as_json(taly(local, "drill", "history", "-o", "json"))["drills"]
    assert any(d["drill_id"] == report["drill_id"] and d["status"] == "passed" for d in history)

    audit = [json.loads(line) for line in (local.state_dir / "audit.log").read_text().splitlines()]
    whats = [a["what"] for a in audit]
    assert "backup.create" in whats and "drill.restore" in whats
    assert all(a["who"] and a["environment"] == "local" for a in audit)
    raw = (local.state_dir / "audit.log").read_text()
    assert local.endpoints["postgres"]["primary"]["password"] not in raw


def test_row_changed_after_the_backup_still_verifies_against_the_restore_point(local):
    m = backup(local)
    before = m["tables"]["public.tenants"]
    postgres._query(_pg(local, "primary"), "UPDATE tenants SET name = name || ' (renamed)' WHERE id = 1")
    deadline = time.monotonic() + 10
    while "renamed" not in postgres._query(_pg(local, "replica"), "SELECT name FROM tenants WHERE id = 1")[0][0]:
        assert time.monotonic() < deadline, "the change never reached the replica"
        time.sleep(0.05)

    result = taly(local, "drill", "restore", "--from", m["backup_id"], "-o", "json")
    assert result.exit_code == 0, result.stdout + result.stderr
    report = as_json(result)
    tenants = next(t for t in report["verification"]["tables"] if t["table"] == "public.tenants")
    assert tenants["checksum"] == before["checksum"] and tenants["passed"]
    # The source wrote after the restore point: the report says when, and how much a restore would miss.
    last = report["source_last_write"]
    assert last["how"] == "pg_last_committed_xact()" and last["error"] is None, last
    assert last["at"] > report["restore_point"] and last["missed_seconds"] > 0
    table = taly(local, "drill", "restore", "--from", m["backup_id"])
    assert table.exit_code == 0 and "would miss" in table.stdout and "of writes" in table.stdout, table.stdout
    # ... and the source has moved on: a newer backup has a different checksum.
    assert backup(local)["tables"]["public.tenants"]["checksum"] != before["checksum"]


def test_a_flipped_byte_in_the_bucket_fails_naming_the_file(local, tmp_path):
    m = backup(local)
    victim = next(f for f in m["files"] if f["path"].endswith(".dat.gz") and f["size"] > 1000)
    key = f"backups/{m['backup_id']}/dump/{victim['path']}"
    client = s3(local)
    body = bytearray(client.get_object(Bucket=bucket(local), Key=key)["Body"].read())
    body[len(body) // 2] ^= 0x01
    client.put_object(Bucket=bucket(local), Key=key, Body=bytes(body))

    junit = tmp_path / "failed.xml"
    result = taly(local, "drill", "restore", "--from", m["backup_id"], "--junit", str(junit), "-o", "json")
    assert result.exit_code == 1, result.stdout + result.stderr
    report = as_json(result)
    assert report["status"] == "failed" and not report["verification"]["passed"]
    bad = [f for f in report["verification"]["files"] if not f["passed"]]
    assert [f["file"] for f in bad] == [victim["path"]] and bad[0]["problem"] == "sha256 mismatch"
    assert victim["path"] in report["error"]
    assert report["cleanup"]["dir_removed"] and drill_processes(report["drill_id"]) == []
    suite = ET.parse(junit).getroot()
    assert int(suite.get("failures")) >= 1
    failed = [c.get("name") for c in suite.iter("testcase") if c.find("failure") is not None]
    assert victim["path"] in failed

    table = taly(local, "drill", "restore", "--from", m["backup_id"])
    assert table.exit_code == 1 and victim["path"] in table.stdout


def test_unknown_backup_id_is_bad_input(local):
    result = taly(local, "drill", "restore", "--from", "19990101T000000Z-000000")
    assert result.exit_code == 2
    assert "unknown backup id" in result.stderr


def test_a_target_that_is_a_source_is_refused(local):
    for role in ("primary", "replica"):
        port = local.endpoints["postgres"][role]["port"]
        result = taly(local, "drill", "restore", "--port", str(port))
        assert result.exit_code == 2, result.stdout + result.stderr
        assert "source endpoint" in result.stderr


def cloud_project(local: State, root: Path, env: str) -> dict[str, str]:
    """A project root whose contracts/<env>.json describes the local estate as `env`; the environment to run in.

    The contract is the one the estate seeded into moto, renamed: its database is reached over TLS
    (sslmode=require, as RDS forces), with the credentials read from the emulator's Secrets Manager.
    """
    shutil.copytree(Path(__file__).parents[2] / "runbooks", root / "runbooks")
    (root / "Pulumi.yaml").write_text("name: taly\n")
    (root / "contracts").mkdir()
    (root / "contracts" / f"{env}.json").write_text(json.dumps({**local.contract, "environment": env}))
    aws = local.endpoints["aws"]
    return {"TALY_PROJECT_ROOT": str(root), "TALY_STATE_DIR": str(root / "state"), "AWS_ENDPOINT_URL": aws["endpoint_url"],
            "AWS_ACCESS_KEY_ID": aws["access_key_id"], "AWS_SECRET_ACCESS_KEY": aws["secret_access_key"],
            "AWS_DEFAULT_REGION": aws["region"]}


@pytest.fixture
def project_root():
    """A project root PostgreSQL's OS user can enter (the drill's scratch instance lives in its state dir)."""
    root = Path(tempfile.mkdtemp(prefix="taly-drill-project-"))
    os.chmod(root, 0o755)
    yield root
    shutil.rmtree(root, ignore_errors=True)


def test_a_cloud_environment_backs_up_and_drills_through_its_contract(local, project_root):
    tmp_path = project_root
    env = cloud_project(local, tmp_path, "staging")
    runner = CliRunner()
    created = runner.invoke(app, ["backup", "create", "--env", "staging", "-o", "json"], env=env)
    assert created.exit_code == 0, created.stderr
    m = as_json(created)
    replica = local.endpoints["postgres"]["replica"]
    assert m["environment"] == "staging" and m["source"]["role"] == "replica"
    assert (m["source"]["host"], m["source"]["port"]) == (replica["host"], replica["port"])

    drilled = runner.invoke(app, ["drill", "restore", "--env", "staging", "--from", m["backup_id"], "-o", "json"], env=env)
    report = as_json(drilled)
    assert drilled.exit_code == 0 and report["status"] == "passed", report["error"]
    # The targets are the contract's (the stack's BackupConfig), not the local defaults.
    assert report["targets"]["rpo_seconds"] == local.contract["backup"]["rpo_minutes"] * 60
    assert "staging contract" in report["targets"]["source"]
    audit = [json.loads(line) for line in (tmp_path / "state" / "staging" / "audit.log").read_text().splitlines()]
    assert [(a["what"], a["outcome"]) for a in audit][-1] == ("drill.restore", "passed")
    assert not any(local.endpoints["postgres"]["primary"]["password"] in line
                   for line in (tmp_path / "state" / "staging" / "audit.log").read_text().splitlines())


def test_a_cloud_environment_without_a_contract_is_bad_input(local, tmp_path):
    env = cloud_project(local, tmp_path, "staging")
    result = CliRunner().invoke(app, ["backup", "create", "--env", "prod"], env=env)
    assert result.exit_code == 2 and "no contract for prod" in result.stderr
    assert not (tmp_path / "state" / "prod").exists()


def test_keep_leaves_the_instance_for_reap(local):
    backup(local)  # the latest one: an earlier test corrupted its backup
    result = taly(local, "drill", "restore", "--keep", "-o", "json")
    assert result.exit_code == 0, result.stdout + result.stderr
    report = as_json(result)
    assert report["cleanup"]["kept"] and "taly drill reap" in report["cleanup"]["remove_with"]
    assert supervisor.port_open(report["target"]["port"])
    assert drill_processes(report["drill_id"])

    reaped = as_json(taly(local, "drill", "reap", "-o", "json"))
    assert [r["drill_id"] for r in reaped["reaped"]] == [report["drill_id"]]
    assert drill_processes(report["drill_id"]) == [] and not supervisor.port_open(report["target"]["port"])
    assert as_json(taly(local, "drill", "reap", "-o", "json"))["reaped"] == []


def test_sigterm_during_the_drill_tears_the_instance_down(local):
    m = backup(local)
    proc = subprocess.Popen(hooked_taly.command("restore", 30, "drill", "restore", "--env", "local", "--state-dir",
                                                str(local.state_dir), "--from", m["backup_id"], "-o", "json"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        entry = wait_for_scratch(proc, lambda: registry(local), timeout=30)
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
    assert entry["drill_id"] not in registry(local)
    assert as_json(taly(local, "drill", "reap", "-o", "json"))["reaped"] == []
    audit = [json.loads(line) for line in (local.state_dir / "audit.log").read_text().splitlines()]
    assert any(a["what"] == "drill.restore" and a["outcome"] == "interrupted" for a in audit)


def test_a_state_dir_the_server_cannot_enter_is_bad_input_before_anything_starts(local, tmp_path):
    """As root, PostgreSQL runs as `postgres`, which cannot enter pytest's tmp dirs (mode 700)."""
    env = cloud_project(local, tmp_path, "staging")
    runner = CliRunner()
    created = runner.invoke(app, ["backup", "create", "--env", "staging", "-o", "json"], env=env)
    assert created.exit_code == 0, created.stderr
    result = runner.invoke(app, ["drill", "restore", "--env", "staging", "-o", "json"], env=env)
    if os.geteuid() == 0:
        assert result.exit_code == 2 and "the scratch instance cannot run in" in result.stderr, result.stderr
        assert "TALY_STATE_DIR" in result.stderr
        assert not list((tmp_path / "state" / "staging").glob("drills/drill-*"))
    else:  # the server runs as this user: nothing to refuse
        assert result.exit_code == 0, result.stderr


def test_a_dry_run_resolves_and_checks_but_starts_nothing(local):
    """validate -> plan -> execute: --dry-run stops after the plan (issue 9)."""
    m = backup(local)
    audit_before = (local.state_dir / "audit.log").read_text()
    drills_before = {o["Key"] for o in s3(local).list_objects_v2(Bucket=bucket(local), Prefix="drills/").get("Contents", [])}
    result = taly(local, "drill", "restore", "--from", m["backup_id"], "--dry-run", "-o", "json")
    assert result.exit_code == 0, result.stderr
    report = as_json(result)
    assert report["status"] == "dry-run" and report["backup_id"] == m["backup_id"]
    assert any("pg_restore" in step for step in report["would"]) and report["rto_seconds"] is None
    assert not supervisor.port_open(report["target"]["port"]) and report["drill_id"] not in registry(local)
    assert not (local.state_dir / "drills" / report["drill_id"]).exists()
    assert (local.state_dir / "audit.log").read_text() == audit_before  # nothing mutated, nothing audited
    after = {o["Key"] for o in s3(local).list_objects_v2(Bucket=bucket(local), Prefix="drills/").get("Contents", [])}
    assert after == drills_before
    table = taly(local, "drill", "restore", "--from", m["backup_id"], "--dry-run")
    assert table.exit_code == 0 and "DRY RUN" in table.stdout and "would restore" in table.stdout


def test_a_damaged_manifest_spoils_only_its_own_backup(local):
    """Issue 10 item 1: a truncated manifest.json is listed as damaged; drilling it is exit 1 naming the object."""
    intact = backup(local)
    damaged = backup(local)
    key = f"backups/{damaged['backup_id']}/manifest.json"
    body = s3(local).get_object(Bucket=bucket(local), Key=key)["Body"].read()
    s3(local).put_object(Bucket=bucket(local), Key=key, Body=body[: len(body) // 3])

    listed = taly(local, "backup", "list", "-o", "json")
    assert listed.exit_code == 0, listed.stderr
    data = as_json(listed)
    assert damaged["backup_id"] not in {b["backup_id"] for b in data["backups"]}
    assert intact["backup_id"] in {b["backup_id"] for b in data["backups"]}
    assert [(d["backup_id"], d["key"]) for d in data["damaged"]] == [(damaged["backup_id"], f"s3://{bucket(local)}/{key}")]
    assert "not valid JSON" in data["damaged"][0]["reason"]
    table = taly(local, "backup", "list")
    assert table.exit_code == 0 and f"damaged {damaged['backup_id']}" in table.stdout, table.stdout

    drilled = taly(local, "drill", "restore", "--from", damaged["backup_id"], "-o", "json")
    assert drilled.exit_code == 1, drilled.stdout + drilled.stderr
    assert key in drilled.stderr and "internal error" not in drilled.stderr

    latest = taly(local, "drill", "restore", "-o", "json")  # the newest intact backup
    assert latest.exit_code == 0, latest.stdout + latest.stderr
    assert as_json(latest)["backup_id"] == intact["backup_id"]


def test_zz_missing_backups_bucket_is_unreachable(local):
    """Runs last: deletes the backups bucket."""
    client, name = s3(local), bucket(local)
    for page in client.get_paginator("list_object_versions").paginate(Bucket=name):
        for v in page.get("Versions", []) + page.get("DeleteMarkers", []):
            client.delete_object(Bucket=name, Key=v["Key"], VersionId=v["VersionId"])
    client.delete_bucket(Bucket=name)
    for args in (("drill", "restore"), ("backup", "list"), ("backup", "create"), ("drill", "history")):
        result = taly(local, *args)
        assert result.exit_code == 3, (args, result.stdout, result.stderr)
        assert name in result.stderr


def test_a_killed_drill_does_not_outlive_local_down(request):
    """Issue 10 item 2: SIGKILL a drill mid-restore, then `taly local down`: no scratch PostgreSQL is left,
    and `taly drill reap` works on the registry alone, estate or no estate."""
    from taly_ops.local import estate as estate_mod

    small = start_local_estate(request, "taly-drill-kill-", 1000)
    sd = str(small.state_dir)
    runner = CliRunner()
    made = runner.invoke(app, ["backup", "create", "--env", "local", "--state-dir", sd, "-o", "json"])
    assert made.exit_code == 0, made.stderr
    proc = subprocess.Popen(hooked_taly.command("restore", 60, "drill", "restore", "--env", "local", "--state-dir", sd),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        entry = wait_for_scratch(proc, lambda: registry(small), timeout=30)
        proc.kill()
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert supervisor.alive(entry["pid"], entry["start_time"])  # SIGKILL runs no teardown

    down = runner.invoke(app, ["local", "down", "--state-dir", sd, "-o", "json"])
    assert down.exit_code == 0, down.stderr
    assert f"reaped {entry['drill_id']}" in down.stderr
    assert not supervisor.alive(entry["pid"], entry["start_time"])
    assert drill_processes(entry["drill_id"]) == [] and not Path(entry["dir"]).exists()
    assert estate_mod.status(small.state_dir)["components"] == []

    reap = runner.invoke(app, ["drill", "reap", "--env", "local", "--state-dir", sd, "-o", "json"])
    assert reap.exit_code == 0, reap.stderr  # no estate: the registry is all reap needs
    assert as_json(reap)["reaped"] == []
