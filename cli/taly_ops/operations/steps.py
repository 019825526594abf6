"""The guarded step engine: validate -> plan -> confirm -> execute, with cleanup, audit, progress and timings.

An operation that changes something (a drill's scratch instance, a refresh's target database;
promotion and runbooks next) validates its input and plans (BadInput before anything changes; a
dry run stops at the plan), describes what it will change as a `Change`, then:

- `confirm(change, steps)`: a change to a protected environment's own systems (prod) runs only when
  the injected confirmer approves it. The default confirmer refuses: non-interactive use needs an
  explicit approval (a caller passes `approve` for `--yes`). A refusal is audited and is `NotApproved`
  (exit 2), before anything changed. Other changes are confirmed at once.
- `execute(change, work, clean_up, conclude, report, steps)`: confirms (if not yet), writes the audit
  record `<what>.start`, runs the work guarded (`run_guarded`: SIGTERM, SIGINT and SIGHUP become
  `Interrupted`; clean_up always runs afterwards with those signals shielded, and its result is the
  report's "cleanup"), then conclude (the verdict) and the audit record `<what>` with the outcome,
  which is written whatever happened.

Inside the work, `steps.step(name)` times a named step (report["timings"][name + "_seconds"]), says
what it does on the progress stream and calls the step hook first.

The clock, the confirmer and the hook are injected: `Steps(clock=..., confirmer=...)`, and
`STEP_HOOK` (a context variable) for a caller that embeds taly (a test that must act while a
scratch instance is up, a runbook that reports progress). Production code never waits for a test.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from ..errors import BadInput, Interrupted, TalyError, Unreachable

Progress = Callable[[str], None]
Clock = Callable[[], float]
StepHook = Callable[[str], None]
Confirmer = Callable[["Change"], bool]

# Called with each step's name before the step starts. Default: none.
STEP_HOOK: contextvars.ContextVar[StepHook | None] = contextvars.ContextVar("taly_step_hook", default=None)


def quiet(line: str) -> None:
    """A progress stream that says nothing."""
    pass


def refuse(change: Change) -> bool:
    """The default confirmer: no approval was given, and nobody can be asked."""
    return False


def approve(change: Change) -> bool:
    """The confirmer of an explicit approval (a `--yes`)."""
    return True


def now() -> dt.datetime:
    """Wall-clock time, UTC (reports and audit entries); durations use the Steps clock."""
    return dt.datetime.now(dt.timezone.utc)


def iso(t: dt.datetime | None) -> str | None:
    return t.astimezone(dt.timezone.utc).isoformat(timespec="milliseconds") if t else None


@contextlib.contextmanager
def signals_raise() -> Iterator[dict[str, bool]]:
    """Make SIGTERM/SIGINT/SIGHUP raise Interrupted (once); afterwards `flags["shielded"] = True` ignores them."""
    flags = {"shielded": False, "fired": False}
    if threading.current_thread() is not threading.main_thread():
        yield flags
        return

    def handler(signum, frame):
        if flags["shielded"] or flags["fired"]:
            return  # tearing down: let the cleanup finish
        flags["fired"] = True
        raise Interrupted(signum)

    # SIGHUP too: a dropped SSH session must not leave a scratch instance behind. A signal the caller
    # ignores (`nohup` ignores SIGHUP; a shell's background jobs SIGINT) stays ignored.
    previous = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
                if signal.getsignal(s) is not signal.SIG_IGN}
    try:
        yield flags
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


@dataclass
class Steps:
    """One run's named steps: timings into `timings`, progress lines with the elapsed time; the hook, the clock
    and the confirmer it was given."""

    progress: Progress = quiet
    timings: dict[str, float] = field(default_factory=dict)
    clock: Clock = time.monotonic
    hook: StepHook | None = None
    confirmer: Confirmer = refuse
    flags: dict[str, bool] = field(default_factory=lambda: {"shielded": False, "fired": False})
    started: float = 0.0

    def __post_init__(self) -> None:
        self.started = self.clock()
        if self.hook is None:
            self.hook = STEP_HOOK.get()

    def elapsed(self) -> float:
        return self.clock() - self.started

    def say(self, message: str) -> None:
        self.progress(f"{self.elapsed():5.1f}s  {message}")

    def reached(self, name: str) -> None:
        """A point between steps the hook may act at (the scratch instance is up, nothing restored yet)."""
        if self.hook is not None:
            self.hook(name)

    @contextlib.contextmanager
    def step(self, name: str, message: str | None = None) -> Iterator[None]:
        self.reached(name)
        if message:
            self.say(message)
        lap = self.clock()
        try:
            yield
        finally:
            self.timings[f"{name}_seconds"] = round(self.clock() - lap, 2)

    def shield(self) -> None:
        """From here to the end, signals wait: what follows must not stop halfway (a database swap)."""
        self.flags["shielded"] = True


@dataclass
class Guarded:
    """How guarded work ended: interrupted by a signal, or a BadInput/Unreachable kept for after the report."""

    interrupted: Interrupted | None = None
    raise_after: TalyError | None = None

    def reraise(self) -> None:
        if self.interrupted is not None:
            raise self.interrupted
        if self.raise_after is not None:
            raise self.raise_after


def describe_error(exc: Exception) -> str:
    """An unexpected error as one line; PostgreSQL's primary message only (its DETAIL can quote a row)."""
    if hasattr(exc, "sqlstate"):
        from ..datarefresh.anonymize import pg_message

        return f"{type(exc).__name__}: {pg_message(exc)}"
    return f"{type(exc).__name__}: {exc}"


def run_guarded(work: Callable[[Steps], None], clean_up: Callable[[Guarded], dict[str, Any]],
                report: dict[str, Any], label: str, steps: Steps) -> Guarded:
    """Run work(steps); then, whatever happened (an error, SIGTERM, SIGHUP, Ctrl-C), clean_up with signals shielded.

    clean_up's result is report["cleanup"]. Errors become report["error"]: a failed run is a report,
    not a traceback. The interruption and BadInput/Unreachable (exit 2/3) are kept in the result, for
    the caller to re-raise once it has reported.
    """
    outcome = Guarded()
    with signals_raise() as flags:
        steps.flags = flags
        try:
            try:
                work(steps)
            except Interrupted as exc:
                outcome.interrupted = exc
                report["error"] = f"interrupted by {exc}"
                steps.progress(f"{label}: interrupted by {exc}; cleaning up")
            except (BadInput, Unreachable) as exc:
                outcome.raise_after = exc
                report["error"] = exc.message
            except Exception as exc:  # noqa: BLE001 - see the docstring
                report["error"] = describe_error(exc)
        finally:
            flags["shielded"] = True
            report["cleanup"] = clean_up(outcome)
    return outcome


class NotApproved(BadInput):
    """A change to a protected environment that its confirmer did not approve: nothing was changed (exit 2)."""


@dataclass
class Change:
    """What an execution changes, for its confirmation and its audit records.

    `what` names the records: `<what>.start` (with inputs, `before` and `after`: the state before, what
    the run will create) before the work, `<what>` with the outcome after it. `changes_environment`:
    the run changes the environment's own systems (a refresh's target database), not only what it
    creates and removes itself (a drill's scratch instance); only such a change of a protected
    environment asks the confirmer. `plan` says in words what the run will do (a dry run's "would").
    """

    what: str
    label: str  # how progress lines name the run: "drill <id>"
    environment: str
    log_dir: Path
    inputs: dict[str, Any]
    plan: list[str]
    changes_environment: bool
    before: Any = None
    after: Any = None
    confirmed: bool = field(default=False, init=False)

    @property
    def protected(self) -> bool:
        from ..environment import PROTECTED

        return self.changes_environment and self.environment in PROTECTED


@dataclass
class Outcome:
    """How an execution ended, for its `<what>` audit record: outcome (passed, failed, ok, interrupted...), details."""

    outcome: str
    before: Any = None
    after: Any = None
    detail: Any = None


def confirm(change: Change, steps: Steps) -> None:
    """The confirm stage: NotApproved (audited) unless the change is unprotected or its confirmer approves it."""
    if change.confirmed:
        return
    if change.protected and not steps.confirmer(change):
        from .. import audit

        audit.record(change.log_dir, change.what, change.environment, inputs=change.inputs, outcome="not-approved",
                     detail={"plan": change.plan})
        raise NotApproved(f"{change.what} would change {change.environment}, a protected environment, and was not "
                          "approved; nothing was changed",
                          hint=f"{change.environment} changes only with an explicit approval")
    change.confirmed = True


def execute(change: Change, work: Callable[[Steps], None], clean_up: Callable[[Guarded], dict[str, Any]],
            conclude: Callable[[Guarded], Outcome], report: dict[str, Any], steps: Steps) -> Guarded:
    """Confirm, audit `<what>.start`, run_guarded(work, clean_up), conclude, audit `<what>` (always, once started).

    conclude(outcome) reaches the verdict once the cleanup ran (with the caller's signal handlers back);
    should it fail, the record says so. The outcome is returned for the caller to re-raise once it reported.
    """
    from .. import audit

    confirm(change, steps)
    audit.record(change.log_dir, f"{change.what}.start", change.environment, inputs=change.inputs,
                 outcome="started", before=change.before, after=change.after)
    ended = Outcome("failed")
    try:
        outcome = run_guarded(work, clean_up, report, change.label, steps)
        ended = conclude(outcome)
    except BaseException as exc:
        ended.outcome = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
        ended.detail = {"error": describe_error(exc)}
        raise
    finally:
        audit.record(change.log_dir, change.what, change.environment, inputs=change.inputs, outcome=ended.outcome,
                     before=ended.before, after=ended.after, detail=ended.detail)
    return outcome
