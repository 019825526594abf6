"""What a health check returns, how results add up to one verdict, and the probes that produce them.

Statuses, worst first: fail > unknown > warn > ok. `unknown` ranks above `warn` because a check
that could not be made may hide a failure; it ranks below `fail` because a known failure is the
stronger statement.

Exit codes (taly's usual ones):
  1  any check failed (with --strict, also any warning);
  3  no failure, but some component gave no verdict at all: every one of its checks is `unknown`
     (its system unreachable, or nothing to measure), so the environment cannot be called healthy;
  0  otherwise (warnings are allowed without --strict; an `unknown` beside a verdict of the same
     component, such as an SLO with no traffic to measure, is reported but does not block).
"""

from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Iterable, Literal, Sequence

from ..errors import OK, UNREACHABLE, VERDICT

Status = Literal["ok", "warn", "unknown", "fail"]
STATUSES: tuple[Status, ...] = ("ok", "warn", "unknown", "fail")
SEVERITY: dict[str, int] = {s: i for i, s in enumerate(STATUSES)}
COMPONENTS: tuple[str, ...] = ("postgres", "redis", "rabbitmq", "s3", "aws", "kubernetes", "slo")


@dataclass(frozen=True)
class CheckResult:
    component: str
    name: str
    status: Status
    observed: str | None = None    # what was measured, with its unit ("3.2 s", "41 %", "available")
    threshold: str | None = None   # what it was held against ("fail >10 s")
    detail: str = ""               # one line of evidence: the query or call made, and what came back
    duration_ms: int = 0

    def __post_init__(self) -> None:
        if self.status not in SEVERITY:
            raise ValueError(f"unknown status {self.status!r}")

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def worst(statuses: Iterable[str]) -> Status:
    """The worst status (fail > unknown > warn > ok); ok for none."""
    return max(statuses, key=SEVERITY.__getitem__, default="ok")  # type: ignore[return-value]


def verdictless(results: Sequence[CheckResult]) -> list[str]:
    """Components whose every check is unknown: they gave no verdict."""
    by: dict[str, list[str]] = {}
    for r in results:
        by.setdefault(r.component, []).append(r.status)
    return [c for c, statuses in by.items() if all(s == "unknown" for s in statuses)]


def exit_code(results: Sequence[CheckResult], strict: bool = False) -> int:
    """0 ok, 1 a failure (or a warning with strict), 3 a component without any verdict (or no checks)."""
    statuses = {r.status for r in results}
    if "fail" in statuses:
        return VERDICT
    if not results or verdictless(results):
        return UNREACHABLE
    if strict and "warn" in statuses:
        return VERDICT
    return OK


@dataclass
class Report:
    environment: str
    checks: list[CheckResult]
    duration_ms: int = 0
    strict: bool = False
    components: list[str] = field(default_factory=list)   # the components that were checked

    @property
    def status(self) -> Status:
        return worst(r.status for r in self.checks)

    @property
    def exit_code(self) -> int:
        return exit_code(self.checks, self.strict)

    def summary(self) -> dict[str, int]:
        return {s: sum(1 for r in self.checks if r.status == s) for s in STATUSES}

    def to_json(self) -> dict[str, Any]:
        return {"environment": self.environment, "status": self.status, "exit_code": self.exit_code,
                "summary": self.summary(), "duration_ms": self.duration_ms, "components": self.components,
                "checks": [r.to_json() for r in self.checks]}


ProbeFn = Callable[[], "CheckResult | Sequence[CheckResult]"]


@dataclass
class Probe:
    """One unit of concurrent work: a callable returning one or more results of one component.

    liveness: "is it up at all". A liveness probe that times out or raises is `fail`; any other
    is `unknown` (its system's liveness probe carries the failure).
    """

    component: str
    name: str
    fn: ProbeFn
    liveness: bool = False
    timeout: float = 3.0

    def failed(self, detail: str, duration_ms: int) -> CheckResult:
        return CheckResult(self.component, self.name, "fail" if self.liveness else "unknown", None, None, detail,
                           duration_ms)


_probe = threading.local()


def probe_started(t0: float) -> None:
    """Called by the runner in a probe's thread: results' duration_ms count from here."""
    _probe.t0 = t0


class Recorder:
    """Collects a probe's results; duration_ms is the time from the probe's start to each result."""

    def __init__(self, component: str) -> None:
        self.component = component
        self.results: list[CheckResult] = []
        self._t0 = getattr(_probe, "t0", None) or time.perf_counter()

    def add(self, name: str, status: Status, observed: Any = None, threshold: str | None = None,
            detail: str = "") -> CheckResult:
        ms = int((time.perf_counter() - self._t0) * 1000)
        r = CheckResult(self.component, name, status, None if observed is None else str(observed), threshold,
                        " ".join(str(detail).split()), ms)
        self.results.append(r)
        return r


# --- credentials a check needs -------------------------------------------------------------------------

class CredentialsUnavailable(Exception):
    """A check's credentials (or the broker's address) could not be read: nothing was asked of the system."""


def guarded(what: str, fn: Callable[[], Any]) -> Any:
    """fn(), with any failure to read a credential turned into CredentialsUnavailable naming `what`."""
    try:
        return fn()
    except CredentialsUnavailable:
        raise
    except Exception as exc:  # noqa: BLE001 - botocore's errors, a malformed secret
        text = " ".join(str(exc).split()) or type(exc).__name__
        raise CredentialsUnavailable(f"cannot read {what}: {type(exc).__name__}: {text}"[:300]) from None
