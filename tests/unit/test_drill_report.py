"""Drill and backup pieces that need no servers: the spec, JUnit output, the audit log, env resolution."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

from taly_ops import audit
from taly_ops.errors import BadInput
from taly_ops.operations import backup as backup_ops
from taly_ops.operations import drill as drill_ops


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
    suite = ET.fromstring(drill_ops.junit_xml(_report(True)))
    assert suite.tag == "testsuite" and suite.get("failures") == "0"
    assert {c.get("name") for c in suite.iter("testcase")} >= {"1.dat.gz", "public.tenants", "rpo", "rto"}


def test_junit_for_a_failed_drill_names_the_file():
    suite = ET.fromstring(drill_ops.junit_xml(_report(False)))
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
    from taly_ops.adapters.postgres_tools import ToolFailed

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

    from taly_ops.adapters import postgres_tools as pgt

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
        with drill_ops._signals_raise() as flags:
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
        with pytest.raises(drill_ops.Interrupted, match="SIGHUP"):
            with drill_ops._signals_raise():
                os.kill(os.getpid(), signal.SIGHUP)
    finally:
        signal.signal(signal.SIGHUP, previous)


def test_a_quoted_value_spanning_lines_is_dropped_with_its_detail():
    from taly_ops.adapters.postgres_tools import ToolFailed

    output = ("pg_restore: error: COPY failed for table \"users\": ERROR:  new row for relation \"users\" violates "
              "check constraint \"users_name_check\"\n"
              "DETAIL:  Failing row contains (7, 1, amelia.smith1@north.example.com, Amelia\n"
              "Smith, 12 Harbour Road\n"
              "Northport).\n"
              "pg_restore: warning: errors ignored on restore: 1")
    text = ToolFailed("pg_restore exited with 1", output).without_rows
    assert "users_name_check" in text and "errors ignored on restore" in text
    assert "Smith" not in text and "Harbour" not in text and "Northport" not in text, text
