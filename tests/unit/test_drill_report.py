"""Drill and backup pieces that need no servers: the spec, JUnit output, the audit log, env resolution."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

from fakes import FakeStore
from taly_ops import audit
from taly_ops.errors import BadInput
from taly_ops.operations import backup as backup_ops
from taly_ops import junit
from taly_ops.errors import Interrupted
from taly_ops.operations import drills as drill_ops
from taly_ops.operations import steps
from taly_ops.operations.drills import logical


def _report(passed: bool = True) -> dict:
    return {
        "drill_id": "drill-x", "environment": "local", "backup_id": "b1", "restore_point": "2026-01-01T00:00:00+00:00",
        "started_at": "2026-01-01T00:10:00+00:00", "status": "passed" if passed else "failed",
        "rpo_seconds": 600.0, "rto_seconds": 2.0, "error": None if passed else "backup files do not match: 1.dat.gz",
        "targets": {"rpo_seconds": 3600, "rto_seconds": 900, "rpo_met": True, "rto_met": True},
        "timings": {"total_seconds": 2.1},
        "verification": {
            "files": [{"file": "1.dat.gz", "passed": passed, **({} if passed else {"problem": "sha256 mismatch"})}],
            "files_passed": passed, "schema_passed": passed, "schema": {"differing_tables": []},
            "tables": [{"table": "public.tenants", "rows": 20, "expected_rows": 20, "checksum": "a",
                        "expected_checksum": "a", "passed": True}] if passed else [],
            "invariants": [{"name": "every content item belongs to a tenant", "violations": 0, "passed": True}],
            "smoke": [], "passed": passed,
        },
    }


def test_the_repository_drill_spec_loads(project_root):
    spec = drill_ops.load_spec(project_root / drill_ops.SPEC)
    names = [i["name"] for i in spec["invariants"]]
    assert "every content item belongs to a tenant" in names
    assert all(i["sql"].lstrip().upper().startswith("SELECT") for i in spec["invariants"] + spec["smoke"])


def test_a_broken_spec_is_bad_input(tmp_path):
    bad = tmp_path / "spec.yaml"
    bad.write_text("invariants:\n  - name: no sql here\n")
    with pytest.raises(BadInput):
        drill_ops.load_spec(bad)


def test_junit_for_a_passed_drill_has_no_failures():
    suite = ET.fromstring(junit.junit_xml(_report(True)))
    assert suite.tag == "testsuite" and suite.get("failures") == "0"
    assert {c.get("name") for c in suite.iter("testcase")} >= {"1.dat.gz", "public.tenants", "rpo", "rto"}


def test_junit_for_a_failed_drill_names_the_file():
    suite = ET.fromstring(junit.junit_xml(_report(False)))
    failed = {c.get("name") for c in suite.iter("testcase") if c.find("failure") is not None}
    assert "1.dat.gz" in failed and int(suite.get("failures")) == len(failed)


def test_audit_lines_append_and_hold_no_secret(tmp_path):
    audit.record(tmp_path, "backup.create", "local", inputs={"source": {"host": "h", "password": "s3cret"},
                                                              "dsn": "host=h password=s3cret"}, outcome="ok")
    audit.record(tmp_path, "drill.restore", "local", inputs={}, outcome="passed", after={"secret_access_key": "k"})
    text = (tmp_path / audit.AUDIT_FILE).read_text()
    lines = [json.loads(line) for line in text.splitlines()]
    assert [entry["what"] for entry in lines] == ["backup.create", "drill.restore"]
    assert "s3cret" not in text and '"k"' not in text
    assert all(entry["who"] for entry in lines)
    assert (tmp_path / audit.AUDIT_FILE).stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize("env", ["dev", "staging", "prod"])
def test_a_cloud_environment_needs_its_contract(env, tmp_path, monkeypatch):
    (tmp_path / "Pulumi.yaml").write_text("name: taly\n")
    monkeypatch.setenv("TALY_PROJECT_ROOT", str(tmp_path))
    with pytest.raises(BadInput, match=f"no contract for {env}") as exc:
        backup_ops.resolve(env)
    assert f"pulumi stack output --stack {env} --json > contracts/{env}.json" in exc.value.message
    assert not (tmp_path / ".taly").exists()  # nothing was created


def test_an_unknown_environment_is_bad_input():
    with pytest.raises(BadInput, match="unknown environment"):
        backup_ops.resolve("qa")


def test_a_tool_failure_keeps_the_error_and_drops_the_lines_that_quote_rows():
    from taly_ops.adapters.postgres import ToolFailed

    output = ("pg_restore: error: COPY failed for table \"users\": ERROR:  duplicate key value violates unique "
              "constraint \"users_email_key\"\n"
              "DETAIL:  Key (email)=(amelia.smith1@north.example.com) already exists.\n"
              "CONTEXT:  COPY users, line 7: \"7\t1\tamelia.smith1@north.example.com\tAmelia Smith\"\n"
              "pg_restore: warning: errors ignored on restore: 1")
    text = ToolFailed("pg_restore exited with 1", output).without_rows
    assert "users_email_key" in text and "errors ignored on restore" in text
    assert "amelia" not in text and "Amelia" not in text


class _FakeSource:
    """A connection to a source that answers source_last_write's queries from a dict."""

    def __init__(self, answers: dict[str, object]) -> None:
        self.answers = answers

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        return None

    def execute(self, sql: str):
        answer = next(v for k, v in self.answers.items() if k in sql)
        return type("Cursor", (), {"fetchone": lambda _self: (answer,)})()


@pytest.mark.parametrize(("tracked", "in_recovery", "missed"), [
    ("off", False, None),  # a primary that does not track commit times: nothing is known
    ("on", False, 0.0),    # it tracks them, and has committed nothing since it started (before the point)
    ("off", True, 0.0),    # a standby that has replayed nothing since it started
])
def test_the_source_last_write_is_unknown_unless_something_would_have_seen_a_commit(monkeypatch, tracked,
                                                                                    in_recovery, missed):
    import datetime as dt
    from types import SimpleNamespace

    from taly_ops.adapters import postgres as pgt

    point = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    answers = {"track_commit_timestamp": tracked, "pg_is_in_recovery": in_recovery,
               "pg_last_committed_xact": None, "pg_last_xact_replay_timestamp": None,
               "pg_postmaster_start_time": point - dt.timedelta(days=3)}
    monkeypatch.setattr(pgt, "connect", lambda ep, **kw: _FakeSource(answers))
    env = SimpleNamespace(source=SimpleNamespace(address="db:5432"))
    last = drill_ops.source_last_write(env, point)
    assert last["missed_seconds"] == missed and last["error"] is None, last
    if missed is None:
        assert "track_commit_timestamp is off" in last["how"]


def test_a_signal_the_caller_ignores_stays_ignored_during_a_drill():
    """`nohup taly drill restore ...`: the hang-up when the terminal closes must not tear the drill down."""
    import os
    import signal

    previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        with steps.signals_raise() as flags:
            os.kill(os.getpid(), signal.SIGHUP)  # would raise Interrupted if handled
            assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN and not flags["fired"]
        assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGHUP, previous)


def test_a_hang_up_interrupts_a_drill_run_from_a_terminal():
    import os
    import signal

    previous = signal.signal(signal.SIGHUP, signal.SIG_DFL)
    try:
        with pytest.raises(Interrupted, match="SIGHUP"):
            with steps.signals_raise():
                os.kill(os.getpid(), signal.SIGHUP)
    finally:
        signal.signal(signal.SIGHUP, previous)


def test_a_quoted_value_spanning_lines_is_dropped_with_its_detail():
    from taly_ops.adapters.postgres import ToolFailed

    output = ("pg_restore: error: COPY failed for table \"users\": ERROR:  new row for relation \"users\" violates "
              "check constraint \"users_name_check\"\n"
              "DETAIL:  Failing row contains (7, 1, amelia.smith1@north.example.com, Amelia\n"
              "Smith, 12 Harbour Road\n"
              "Northport).\n"
              "pg_restore: warning: errors ignored on restore: 1")
    text = ToolFailed("pg_restore exited with 1", output).without_rows
    assert "users_name_check" in text and "errors ignored on restore" in text
    assert "Smith" not in text and "Harbour" not in text and "Northport" not in text, text


# --- issue 10: damaged backups, early failures, bad flags and files ------------------------------------

def _manifest(bid: str, **overrides) -> dict:
    m = {"format": 1, "backup_id": bid, "created_at": "2026-12-02T15:58:00.000+00:00",
         "snapshot": {"at": "2026-12-02T15:58:01.000+00:00"},
         "source": {"role": "replica", "host": "127.0.0.1", "port": 5433, "database": "taly", "user": "taly"},
         "files": [{"path": "toc.dat", "size": 10, "sha256": "a" * 64}], "total_bytes": 10,
         "tables": {"public.tenants": {"rows": 20, "checksum": "sum-md5-60:1"}},
         "schema": {"fingerprint": "f", "tables": {"public.tenants": "t"}}}
    return m | overrides


def _store_env(objects: dict[str, bytes]):
    from types import SimpleNamespace

    return SimpleNamespace(name="local", store=FakeStore(objects))


def _bucket(*manifests: tuple[str, bytes]) -> dict[str, bytes]:
    return {f"backups/{bid}/manifest.json": body for bid, body in manifests}


def test_a_truncated_manifest_is_listed_as_damaged_and_latest_is_the_newest_intact_backup():
    old, damaged = "20261202T155800Z-aaaaaa", "20261202T160000Z-bbbbbb"
    whole = json.dumps(_manifest(damaged)).encode()
    env = _store_env(_bucket((old, json.dumps(_manifest(old)).encode()), (damaged, whole[: len(whole) // 2])))
    listing = backup_ops.list_backups(env)
    assert [b["backup_id"] for b in listing.backups] == [old]
    assert [d["backup_id"] for d in listing.damaged] == [damaged]
    assert listing.damaged[0]["key"] == f"s3://taly-local-backups/backups/{damaged}/manifest.json"
    assert "not valid JSON" in listing.damaged[0]["reason"]
    assert backup_ops.manifest(env, "latest")["backup_id"] == old


def test_drilling_a_damaged_backup_is_a_failed_verdict_naming_the_object():
    from taly_ops.errors import VERDICT
    from taly_ops.operations.manifest import DamagedBackup

    bid = "20261202T160000Z-bbbbbb"
    env = _store_env(_bucket((bid, b"\x89PNG\x00\x01")))
    with pytest.raises(DamagedBackup) as exc:
        backup_ops.manifest(env, bid)
    assert exc.value.exit_code == VERDICT
    assert f"backups/{bid}/manifest.json" in exc.value.message


@pytest.mark.parametrize(("change", "named"), [
    ({"files": [{"path": "../../etc/cron.d/x", "size": 1, "sha256": "a" * 64}]}, "files.0.path"),
    ({"files": [{"path": "toc.dat", "size": 1, "sha256": "not-a-digest"}]}, "files.0.sha256"),
    ({"tables": {"public.tenants": {"rows": "twenty", "checksum": "x"}}}, "tables.public.tenants.rows"),
    ({"snapshot": {"at": "yesterday"}}, "snapshot.at"),
    ({"backup_id": "20200101T000000Z-cccccc"}, "names backup"),
])
def test_a_manifest_that_parses_but_cannot_be_trusted_is_damaged(change, named):
    from taly_ops.operations.manifest import DamagedBackup

    bid = "20261202T160000Z-bbbbbb"
    env = _store_env(_bucket((bid, json.dumps(_manifest(bid, **change)).encode())))
    with pytest.raises(DamagedBackup, match=named.replace(".", r"\.")):
        backup_ops.manifest(env, bid)
    assert backup_ops.list_backups(env).damaged[0]["backup_id"] == bid


def test_drill_history_lists_a_damaged_report_without_failing():
    env = _store_env({"drills/drill-a.json": json.dumps({**_report(True), "drill_id": "drill-a"}).encode(),
                      "drills/drill-b.json": b'{"drill_id": "drill-b", "sta'})
    rows = {r["drill_id"]: r for r in drill_ops.history(env)}
    assert rows["drill-a"]["status"] == "passed"
    assert rows["drill-b"]["status"] == "damaged" and "drills/drill-b.json" in rows["drill-b"]["error"]


def _stopped_early() -> dict:
    """A drill stopped by the file check: nothing restored, so no schema, tables, invariants or RTO."""
    r = _report(False)
    r["rto_seconds"] = None
    r["targets"] = {"rpo_seconds": 3600, "rto_seconds": 900, "rpo_met": True, "rto_met": None, "source": "defaults"}
    r["verification"] = {"files": [{"file": "1.dat.gz", "passed": False, "problem": "sha256 mismatch"}],
                         "files_passed": False, "schema_passed": None, "schema": {}, "tables": [], "invariants": [],
                         "smoke": [], "passed": False}
    r.update(restore_point_kind="logical", cleanup={"kept": False, "instance_stopped": True, "dir_removed": True},
             timings={"download_seconds": 0.25, "total_seconds": 0.31})
    return r


def test_a_drill_stopped_early_skips_the_checks_it_never_ran():
    suite = ET.fromstring(junit.junit_xml(_stopped_early()))
    failed = {c.get("name") for c in suite.iter("testcase") if c.find("failure") is not None}
    skipped = {c.get("name") for c in suite.iter("testcase") if c.find("skipped") is not None}
    assert failed == {"1.dat.gz", "completed"}
    assert skipped == {"schema fingerprint", "rto"}
    assert suite.get("failures") == "2" and suite.get("skipped") == "2"
    assert b"None" not in junit.junit_xml(_stopped_early())


def test_a_drill_report_reads_as_prose_for_people(capsys):
    from taly_ops.commands.drill import _report as render

    render(_stopped_early())
    text = capsys.readouterr().out
    assert "None" not in text and "{'" not in text and "True" not in text and "False" not in text, text
    assert "RTO not measured" in text and "scratch instance removed" in text
    assert "download 0.25s" in text


@pytest.mark.parametrize(("content", "wrong"), [
    (b"invariants: []\nsmoke: SELECT 1\n", "smoke"),
    (b"invariants:\n  - name: x\n    sql: SELECT 0\n    min_rows: 1\n", "invariants.0.min_rows"),
    (b"\xff\xfe\x00binary\x00", "binary file"),
    (b"- just\n- a list\n", "is not a drill spec"),
])
def test_a_spec_of_the_wrong_shape_or_binary_is_bad_input_naming_the_file(tmp_path, content, wrong):
    path = tmp_path / "spec.yaml"
    path.write_bytes(content)
    with pytest.raises(BadInput) as exc:
        drill_ops.load_spec(path)
    assert str(path) in exc.value.message and wrong in exc.value.message


@pytest.mark.parametrize("port", ["70000", "-1", "1"])
def test_an_out_of_range_port_is_exit_2_naming_the_flag_before_any_work(tmp_path, port):
    from typer.testing import CliRunner

    from taly_ops.app import app

    state = tmp_path / "state"
    result = CliRunner().invoke(app, ["drill", "restore", "--env", "local", "--state-dir", str(state),
                                      "--port", port])
    assert result.exit_code == 2, result.output
    assert "--port" in result.stderr
    assert not state.exists()  # nothing resolved, downloaded or started


def test_an_out_of_range_port_is_refused_by_the_operation_too(tmp_path):
    from types import SimpleNamespace

    with pytest.raises(BadInput, match="--port 70000"):
        logical.restore(SimpleNamespace(name="local", state_dir=tmp_path), port=70000)
    assert not list(tmp_path.iterdir())


def test_reap_needs_only_the_registry_not_the_estate(tmp_path):
    """A killed drill's leftovers in a state dir with no estate at all: reap removes them (exit 0)."""
    from typer.testing import CliRunner

    from taly_ops.app import app

    state = tmp_path / "state"
    left = state / "drills" / "drill-20261202T160000Z-abcdef"
    (left / "data").mkdir(parents=True)
    (state / "drills" / "registry.json").write_text(json.dumps({"drills": {left.name: {
        "drill_id": left.name, "backup_id": "b", "dir": str(left), "port": 1, "owner_pid": 999999999,
        "owner_start_time": 1, "pid": None, "start_time": None, "pgid": None, "keep": False,
        "registered_at": "2026-12-02T16:00:00.000+00:00"}}}))
    result = CliRunner().invoke(app, ["drill", "reap", "--env", "local", "--state-dir", str(state), "-o", "json"])
    assert result.exit_code == 0, result.stderr
    assert [r["drill_id"] for r in json.loads(result.stdout)["reaped"]] == [left.name]
    assert not left.exists()


def test_ids_in_backup_list_and_drill_history_are_never_cut_at_80_columns(monkeypatch, capsys):
    """Issue 10 item 12: piped output used to show `20261202T1558…`, and that id is what --from takes."""
    from taly_ops.commands.backup import _list
    from taly_ops.commands.drill import _history

    monkeypatch.setenv("COLUMNS", "80")
    bid = "20261202T155800Z-a1b2c3"
    _list([{"backup_id": bid, "snapshot_at": "2026-12-02T15:58:01.123+00:00", "source": "replica 127.0.0.1:54321",
            "total_bytes": 123456789, "tables": 9, "rows": 10_000_000}], [])
    _history([{"drill_id": "drill-20261202T160000Z-d4e5f6", "restore_point_kind": "logical", "backup_id": bid,
               "status": "passed", "rpo_seconds": 12.5, "rto_seconds": None}])
    out = capsys.readouterr().out
    assert out.count(bid) == 2 and "drill-20261202T160000Z-d4e5f6" in out and "…" not in out, out
    assert "None" not in out


def _report_env(tmp_path):
    from types import SimpleNamespace

    return SimpleNamespace(name="local", state_dir=tmp_path, store=FakeStore(),
                           targets={"rpo_minutes": 60, "rto_minutes": 15, "source": "BackupConfig defaults"})


def test_both_drill_paths_share_one_report_skeleton_and_type(tmp_path):
    """The logical and RDS reports come from report.new_report: same keys, one typed model (DrillReport)."""
    import datetime as dt

    from fakes import FakeClock
    from taly_ops.operations.drills.report import new_report
    from taly_ops.operations.reports import DrillReport
    from taly_ops.operations.steps import Steps

    env, started = _report_env(tmp_path), dt.datetime(2026, 12, 2, 16, tzinfo=dt.timezone.utc)
    logical = new_report(env, "drill-x", started, Steps(clock=FakeClock()), tmp_path / "spec.yaml", backup_id="b",
                         restore_point="2026-12-02T15:00:00.000+00:00", source={}, target={}, rpo_seconds=3600.0,
                         source_last_write={})
    rds = new_report(env, "taly-drill-dev-x", started, Steps(clock=FakeClock()), tmp_path / "spec.yaml",
                     backup_id="s", restore_point_kind="snapshot", snapshot_id="s", rpo_seconds=10.0,
                     verification={"method": "schema of the source replica now", "files_passed": None, "error": None})
    assert set(logical) - {"source_last_write"} == set(rds) - {"snapshot_id"}
    assert set(logical["verification"]) == set(rds["verification"]) - {"method", "error"}
    for r in (logical, rds):
        assert r["rto_seconds"] is None and r["verification"]["schema_passed"] is None  # not run yet, not failed
        assert DrillReport.model_validate(r).to_json()["targets"]["rpo_seconds"] == 3600
    with pytest.raises(TypeError, match="not drill report fields"):
        new_report(env, "drill-x", started, Steps(), tmp_path, colour="red")


def test_the_verdict_of_a_drill_that_never_restored_is_failed_stored_and_audited(tmp_path):
    import datetime as dt

    from fakes import FakeClock
    from taly_ops.operations.drills.report import finish, new_report
    from taly_ops.operations.steps import Change, Steps, execute

    env, clock = _report_env(tmp_path), FakeClock()
    steps = Steps(clock=clock)
    report = new_report(env, "drill-x", dt.datetime(2026, 12, 2, 16, tzinfo=dt.timezone.utc), steps, tmp_path,
                        backup_id="b", rpo_seconds=12.0)

    def work(s: Steps) -> None:
        report["error"] = "backup files do not match the manifest: toc.dat (sha256 mismatch)"
        clock.now += 1.5

    change = Change("drill.restore", "drill drill-x", env.name, env.state_dir, {}, [], changes_environment=False)
    outcome = execute(change, work, lambda o: {"removed": True},
                      lambda o: finish(env, report, steps=steps, before={}, interrupted=o.interrupted is not None),
                      report, steps)
    outcome.reraise()  # nothing to raise: the error is the report's
    assert report["status"] == "failed" and report["timings"]["total_seconds"] == 1.5
    assert report["targets"]["rpo_met"] is True and report["targets"]["rto_met"] is None
    assert json.loads(env.store.objects["drills/drill-x.json"])["status"] == "failed"
    assert report["report_key"] == "s3://taly-local-backups/drills/drill-x.json"
    logged = [json.loads(line) for line in (tmp_path / audit.AUDIT_FILE).read_text().splitlines()]
    assert [(e["what"], e["outcome"]) for e in logged] == [("drill.restore.start", "started"), ("drill.restore", "failed")]
    assert logged[-1]["detail"] == {"error": report["error"]} and logged[-1]["after"]["cleanup"] == {"removed": True}


@pytest.mark.parametrize(("content", "wrong"), [(b"smoke: SELECT 1\n", "smoke"), (b"\x00\x01\x02binary", "binary")])
def test_a_bad_spec_is_exit_2_naming_it_before_anything_is_resolved(tmp_path, content, wrong):
    from typer.testing import CliRunner

    from taly_ops.app import app

    spec, state = tmp_path / "spec.yaml", tmp_path / "no-estate-here"
    spec.write_bytes(content)
    result = CliRunner().invoke(app, ["drill", "restore", "--env", "local", "--state-dir", str(state),
                                      "--spec", str(spec)])
    assert result.exit_code == 2, result.output
    assert str(spec) in result.stderr and wrong in result.stderr and "no local estate" not in result.stderr
    assert "internal error" not in result.stderr and not state.exists()


def test_local_down_names_a_drill_still_running_and_how_to_remove_its_instance(tmp_path):
    """Issue 10 item 2: `local down` reaps what dead drills left; a live one is named, with the reap command."""
    import os

    from taly_ops.local import supervisor

    state = tmp_path / "state"
    live, dead = state / "drills" / "drill-live", state / "drills" / "drill-dead"
    live.mkdir(parents=True)
    dead.mkdir()

    def entry(d, owner):
        return {"drill_id": d.name, "backup_id": "b", "dir": str(d), "port": 1, "owner_pid": owner,
                "owner_start_time": supervisor.start_time(owner) if owner == os.getpid() else 1, "pid": None,
                "start_time": None, "pgid": None, "keep": False, "registered_at": "2026-12-02T16:00:00.000+00:00"}

    (state / "drills" / "registry.json").write_text(json.dumps({"drills": {
        "drill-live": entry(live, os.getpid()), "drill-dead": entry(dead, 999999999)}}))
    lines: list[str] = []
    result = drill_ops.reap_before_down(state, progress=lines.append)
    assert [r["drill_id"] for r in result["reaped"]] == ["drill-dead"] and not dead.exists()
    assert live.exists()
    left = [line for line in lines if line.startswith("left drill-live")]
    assert left and f"taly drill reap --env local --state-dir {state}" in left[0], lines


def test_a_refresh_report_reads_as_prose_for_people(capsys):
    """Issue 10 item 13, for `taly data refresh`: timings as prose, not a dict's repr."""
    from taly_ops.commands.data import _render

    _render({"status": "failed", "refresh_id": "refresh-x", "from": "local", "backup_id": "b", "restore_point": "t",
             "to": "staging", "target": {"host": "h", "port": 5432, "database": "taly"}, "subset": None,
             "anonymized": True, "rules": {"file": "runbooks/data/anonymize.yaml", "key_source": None},
             "tables": {}, "anonymization": [], "pii_scan": {"passed": None}, "swapped": False,
             "previous_database": None, "error": "stopped", "timings": {"download_seconds": 0.25, "total_seconds": 1.0}})
    text = capsys.readouterr().out
    assert "timings: download 0.25s, total 1s" in text and "{'" not in text, text
