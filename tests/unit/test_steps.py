"""The guarded step engine (operations/steps.py) with an injected clock, hook and confirmer: no servers, no sleeping."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

from fakes import FakeClock, FakeConfirmer
from taly_ops import audit
from taly_ops.errors import BAD_INPUT, BadInput, Interrupted
from taly_ops.operations.steps import (STEP_HOOK, Change, NotApproved, Outcome, Steps, approve, confirm, execute,
                                       run_guarded)


def test_steps_time_each_named_step_by_the_injected_clock_and_call_the_hook_first():
    clock, seen, lines = FakeClock(), [], []
    s = Steps(lines.append, clock=clock, hook=seen.append)
    with s.step("download", "downloading 3 files"):
        clock.now += 2.5
    with s.step("restore"):
        clock.now += 0.25
    assert s.timings == {"download_seconds": 2.5, "restore_seconds": 0.25}
    assert seen == ["download", "restore"]
    assert lines == ["  0.0s  downloading 3 files"] and s.elapsed() == 2.75


def test_the_context_hook_reaches_steps_built_without_one():
    seen = []
    token = STEP_HOOK.set(seen.append)
    try:
        Steps().reached("verify")
    finally:
        STEP_HOOK.reset(token)
    assert seen == ["verify"]
    Steps().reached("verify")  # no hook outside the context: nothing called, nothing raised
    assert seen == ["verify"]


def test_a_signal_at_a_step_interrupts_the_work_and_the_cleanup_still_runs():
    report: dict = {"error": None}
    cleaned = []

    def work(s: Steps) -> None:
        with s.step("restore"):
            raise AssertionError("the hook's signal stops the step before it runs")

    def kill_at_restore(name: str) -> None:
        if name == "restore":
            os.kill(os.getpid(), signal.SIGTERM)

    outcome = run_guarded(work, lambda o: cleaned.append(o) or {"removed": True}, report, "drill x",
                          Steps(hook=kill_at_restore))
    assert isinstance(outcome.interrupted, Interrupted) and outcome.interrupted.signum == signal.SIGTERM
    assert report == {"error": "interrupted by SIGTERM", "cleanup": {"removed": True}}
    assert cleaned == [outcome]
    with pytest.raises(Interrupted):
        outcome.reraise()


def test_bad_input_during_the_work_is_kept_for_after_the_report_and_other_errors_become_the_report():
    report: dict = {"error": None}

    def refuse(s: Steps) -> None:
        raise BadInput("the target is a source")

    outcome = run_guarded(refuse, lambda o: {}, report, "drill x", Steps())
    assert report["error"] == "the target is a source" and isinstance(outcome.raise_after, BadInput)

    report = {"error": None}
    outcome = run_guarded(lambda s: 1 / 0, lambda o: {"ok": True}, report, "drill x", Steps())
    assert report == {"error": "ZeroDivisionError: division by zero", "cleanup": {"ok": True}}
    outcome.reraise()  # nothing to raise: the error is the report's


def test_signals_wait_during_the_cleanup_and_after_shield():
    report: dict = {"error": None}

    def clean_up(o) -> dict:
        os.kill(os.getpid(), signal.SIGTERM)  # shielded: ignored, the cleanup finishes
        return {"finished": True}

    def swap(s: Steps) -> None:
        s.shield()
        os.kill(os.getpid(), signal.SIGINT)  # a half-done swap is worse than a late Ctrl-C

    before = signal.getsignal(signal.SIGTERM)
    outcome = run_guarded(swap, clean_up, report, "refresh x", Steps())
    assert outcome.interrupted is None and report == {"error": None, "cleanup": {"finished": True}}
    assert signal.getsignal(signal.SIGTERM) is before  # the caller's handler is back


# --- validate -> plan -> confirm -> execute ----------------------------------------------------------------

def _change(tmp_path: Path, environment: str = "staging", changes_environment: bool = True) -> Change:
    return Change("data.refresh", "refresh r-1", environment, tmp_path, {"to": environment, "password": "pw"},
                  ["restore into a scratch instance", "swap the new database in"], changes_environment,
                  before={"database": "cms"}, after={"refresh_id": "r-1"})


def _audited(tmp_path: Path) -> list[dict]:
    log = tmp_path / audit.AUDIT_FILE
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


class Run:
    """A run's work, cleanup and verdict that remember they ran."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock, self.ran = clock, []

    def work(self, s: Steps) -> None:
        with s.step("swap"):
            self.clock.now += 2.0
        self.ran.append("work")

    def clean_up(self, o) -> dict:
        self.ran.append("clean_up")
        return {"scratch_removed": True}

    def conclude(self, o) -> Outcome:
        self.ran.append("conclude")
        return Outcome("interrupted" if o.interrupted else "ok", after={"swapped": True})


def test_an_unprotected_change_runs_without_asking_and_is_audited_before_and_after(tmp_path):
    clock, confirmer = FakeClock(), FakeConfirmer(False)
    steps, run, report = Steps(clock=clock, confirmer=confirmer), Run(clock), {"error": None}
    outcome = execute(_change(tmp_path), run.work, run.clean_up, run.conclude, report, steps)
    assert outcome.interrupted is None and outcome.raise_after is None
    assert run.ran == ["work", "clean_up", "conclude"] and confirmer.asked == []
    assert report == {"error": None, "cleanup": {"scratch_removed": True}} and steps.timings == {"swap_seconds": 2.0}
    start, end = _audited(tmp_path)
    assert (start["what"], start["outcome"], start["environment"]) == ("data.refresh.start", "started", "staging")
    assert start["before"] == {"database": "cms"} and start["after"] == {"refresh_id": "r-1"}
    assert start["inputs"] == {"to": "staging"}  # the audit log's scrub: no secret
    assert (end["what"], end["outcome"], end["after"]) == ("data.refresh", "ok", {"swapped": True})


def test_a_change_to_prod_is_refused_by_default_before_anything_runs_and_the_refusal_is_audited(tmp_path):
    clock = FakeClock()
    run = Run(clock)
    with pytest.raises(NotApproved) as refused:
        execute(_change(tmp_path, "prod"), run.work, run.clean_up, run.conclude, {"error": None}, Steps(clock=clock))
    assert refused.value.exit_code == BAD_INPUT and "prod, a protected environment" in refused.value.message
    assert run.ran == []
    [entry] = _audited(tmp_path)
    assert (entry["what"], entry["outcome"], entry["environment"]) == ("data.refresh", "not-approved", "prod")
    assert entry["detail"] == {"plan": ["restore into a scratch instance", "swap the new database in"]}


def test_the_confirmer_is_asked_once_about_the_change_and_its_refusal_stops_it(tmp_path):
    change, no = _change(tmp_path, "prod"), FakeConfirmer(False)
    with pytest.raises(NotApproved):
        confirm(change, Steps(confirmer=no))
    assert no.asked == [change] and not change.confirmed

    change, yes, clock = _change(tmp_path, "prod"), FakeConfirmer(True), FakeClock()
    steps, run = Steps(clock=clock, confirmer=yes), Run(clock)
    confirm(change, steps)  # the operation confirms before it registers anything ...
    execute(change, run.work, run.clean_up, run.conclude, {"error": None}, steps)  # ... execute asks no more
    assert yes.asked == [change] and run.ran == ["work", "clean_up", "conclude"]
    assert [(e["what"], e["outcome"]) for e in _audited(tmp_path)][-2:] == [("data.refresh.start", "started"),
                                                                           ("data.refresh", "ok")]


def test_an_explicit_approval_runs_a_change_to_prod(tmp_path):
    clock = FakeClock()
    run = Run(clock)
    execute(_change(tmp_path, "prod"), run.work, run.clean_up, run.conclude, {"error": None},
            Steps(clock=clock, confirmer=approve))
    assert run.ran == ["work", "clean_up", "conclude"]


def test_a_run_that_changes_only_what_it_creates_is_not_asked_about_even_for_prod(tmp_path):
    """A drill of prod restores into its own scratch instance: prod is read, not changed."""
    clock, confirmer = FakeClock(), FakeConfirmer(False)
    run = Run(clock)
    execute(_change(tmp_path, "prod", changes_environment=False), run.work, run.clean_up, run.conclude,
            {"error": None}, Steps(clock=clock, confirmer=confirmer))
    assert confirmer.asked == [] and run.ran == ["work", "clean_up", "conclude"]


def test_an_interrupted_run_is_cleaned_up_concluded_and_audited_as_interrupted(tmp_path):
    clock = FakeClock()
    run, report = Run(clock), {"error": None}

    def kill_at_swap(name: str) -> None:
        os.kill(os.getpid(), signal.SIGTERM)

    outcome = execute(_change(tmp_path), run.work, run.clean_up, run.conclude, report, Steps(clock=clock,
                                                                                             hook=kill_at_swap))
    assert run.ran == ["clean_up", "conclude"] and outcome.interrupted.signum == signal.SIGTERM
    assert [(e["what"], e["outcome"]) for e in _audited(tmp_path)] == [("data.refresh.start", "started"),
                                                                       ("data.refresh", "interrupted")]


def test_the_outcome_is_audited_even_when_the_verdict_fails(tmp_path):
    clock = FakeClock()
    run = Run(clock)

    def conclude(o) -> Outcome:
        raise OSError("the bucket went away")

    with pytest.raises(OSError):
        execute(_change(tmp_path), run.work, run.clean_up, conclude, {"error": None}, Steps(clock=clock))
    end = _audited(tmp_path)[-1]
    assert (end["what"], end["outcome"], end["detail"]) == ("data.refresh", "failed",
                                                            {"error": "OSError: the bucket went away"})
