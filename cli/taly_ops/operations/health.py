"""`taly health`: resolve the environment, run every check concurrently, add the results up.

Each probe runs in its own daemon thread and is waited for until its own deadline (start + its
timeout). A probe that misses it is `fail` if it is a liveness probe, `unknown` otherwise, and is
left behind: its sockets have their own timeouts, so it ends by itself, and being a daemon it never
holds up the exit (a ThreadPoolExecutor's workers would: they are joined at interpreter exit).
"""

from __future__ import annotations

import importlib
import threading
import time
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import replace
from pathlib import Path
from typing import Callable, Iterable, Sequence

from ..environment import Environment, resolve
from ..errors import BadInput
from ..health import MODULES
from ..health.model import COMPONENTS, CheckResult, Probe, Report, probe_started
from ..health.thresholds import Thresholds


# --- input --------------------------------------------------------------------------------------

def resolve_components(names: Iterable[str] | None) -> list[str]:
    """The requested components in their canonical order (all when none); "a,b" and repeats allowed."""
    wanted = [n.strip() for name in (names or []) for n in name.split(",") if n.strip()]
    unknown = [n for n in wanted if n not in COMPONENTS]
    if unknown:
        raise BadInput(f"unknown component{'s' if len(unknown) > 1 else ''} {', '.join(repr(n) for n in unknown)}; "
                       f"known: {', '.join(COMPONENTS)}")
    return [c for c in COMPONENTS if c in wanted] if wanted else list(COMPONENTS)


def load_thresholds(path: Path | None, root: Path | None, timeout: float | None = None) -> Thresholds:
    from ..health.thresholds import load

    thresholds, _ = load(path, root)
    return thresholds.with_timeout(timeout)


# --- probes -------------------------------------------------------------------------------------

def build_probes(target: Environment, thresholds: Thresholds, components: Sequence[str]) -> list[Probe]:
    """The components' probes, with the client libraries they need already imported.

    Imported here, before any probe's clock starts: a cold import (half a second for some) must not
    eat into a check's timeout, and imports racing in many threads buy nothing (they hold the GIL).
    """
    probes: list[Probe] = []
    for component in components:
        module = importlib.import_module(f"taly_ops.health.{MODULES[component]}")
        found = module.probes(target, thresholds)
        if found:
            for name in getattr(module, "REQUIRES", ()):
                importlib.import_module(name)
        probes += found
    return probes


def _work(probe: Probe, future: Future) -> None:
    t0 = time.perf_counter()
    probe_started(t0)
    try:
        out = probe.fn()
        results = [out] if isinstance(out, CheckResult) else list(out)
    except BaseException as exc:  # noqa: BLE001 - a check's error is its result, never a crash
        text = " ".join(str(exc).split()) or type(exc).__name__
        results = [probe.failed(f"error: {type(exc).__name__}: {text}"[:400], 0)]
    ms = int((time.perf_counter() - t0) * 1000)
    future.set_result([r if r.duration_ms else replace(r, duration_ms=ms) for r in results])


def _start(probe: Probe) -> tuple[Future, float]:
    future: Future = Future()
    thread = threading.Thread(target=_work, args=(probe, future), name=f"health-{probe.component}", daemon=True)
    started = time.perf_counter()
    thread.start()
    return future, started


def _collect(probe: Probe, future: Future, started: float) -> list[CheckResult]:
    remaining = started + probe.timeout - time.perf_counter()
    try:
        return future.result(timeout=max(remaining, 0))
    except FutureTimeout:
        ms = int((time.perf_counter() - started) * 1000)
        result = probe.failed(f"timed out after {probe.timeout:g} s", ms)
        return [replace(result, observed="timed out")]


def run_probes(probes: Sequence[Probe], parallel: bool = True) -> list[CheckResult]:
    """Every probe's results, in probe order; concurrently, or one after another (for comparison)."""
    if not parallel:
        out: list[CheckResult] = []
        for p in probes:
            out += _collect(p, *_start(p))
        return out
    started = [(p, *_start(p)) for p in probes]
    out = []
    for p, future, t0 in started:
        out += _collect(p, future, t0)
    return out


def scrub(results: Sequence[CheckResult], secrets: Iterable[str]) -> list[CheckResult]:
    """Replace every secret value in what will be printed with ***."""
    secrets = sorted({s for s in secrets if s}, key=len, reverse=True)
    if not secrets:
        return list(results)

    def clean(text: str | None) -> str | None:
        if text is None:
            return None
        for s in secrets:
            text = text.replace(s, "***")
        return text

    return [replace(r, name=clean(r.name), observed=clean(r.observed), threshold=clean(r.threshold),
                    detail=clean(r.detail)) for r in results]


# --- the operation ----------------------------------------------------------------------------------

def check(env: str, components: Sequence[str], thresholds: Thresholds, *, root: Path | None = None,
          state_dir: Path | None = None, strict: bool = False, parallel: bool = True) -> Report:
    """One health run over an environment. Raises BadInput for an environment that cannot be resolved."""
    t0 = time.perf_counter()
    target = resolve(env, state_dir, root=root)
    probes = build_probes(target, thresholds, components)
    results = scrub(run_probes(probes, parallel=parallel), target.revealed())
    return Report(environment=env, checks=results, duration_ms=int((time.perf_counter() - t0) * 1000),
                  strict=strict, components=list(components))


def watch(run: Callable[[], Report], every: float, show: Callable[[Report], None],
          sleep: Callable[[float], None] = time.sleep, runs: int | None = None) -> int:
    """Run, show, wait `every` seconds, again, until interrupted (or `runs` runs); the last run's exit code."""
    if not every > 0:
        raise BadInput(f"--watch takes a positive number of seconds, not {every}")
    code, n = 0, 0
    try:
        while runs is None or n < runs:
            report = run()
            code = report.exit_code
            show(report)
            n += 1
            if runs is not None and n >= runs:
                break
            sleep(every)
    except KeyboardInterrupt:
        pass
    return code
