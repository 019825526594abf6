"""The guarded step engine (operations/steps.py) with an injected clock and hook: no servers, no sleeping."""

from __future__ import annotations

import os
import signal

import pytest

from fakes import FakeClock
from taly_ops.errors import BadInput, Interrupted
from taly_ops.operations.steps import STEP_HOOK, Steps, run_guarded


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
