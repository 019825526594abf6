"""The kubelet's runtime pieces: restart back-off, probe thresholds, exit watching, timers, pod IPs."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading

import pytest

from taly_ops.local.cluster.containers import Backoff, ExitWatcher, Timers, exit_code, go_duration
from taly_ops.local.cluster.ipam import IPAllocator
from taly_ops.local.cluster.probes import ProbeSpec, ProbeState, resolve_port


class Clock:
    def __init__(self, t: float = 1000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def test_backoff_first_restart_at_once_then_10s_doubling_to_300s():
    clock = Clock()
    b = Backoff(clock)
    key = ("uid", "c")
    assert b.in_backoff(key, clock.t) == 0          # the first exit: restarted at once
    periods = [b.next(key, clock.t)]
    for _ in range(7):
        finished = clock.t                          # it crashed as soon as it started
        assert b.in_backoff(key, finished) == periods[-1]
        clock.t += periods[-1]
        assert b.in_backoff(key, finished) == 0
        periods.append(b.next(key, finished))
    assert periods == [10, 20, 40, 80, 160, 300, 300, 300]


def test_backoff_counts_from_the_containers_finish_and_starts_over_after_2x_cap():
    clock = Clock()
    b = Backoff(clock, initial=10, cap=300)
    key = "k"
    b.next(key, clock.t)                 # first restart: period 10 s
    clock.t += 4
    finished = clock.t                   # it crashed again 4 s later
    clock.t += 3
    assert b.in_backoff(key, finished) == pytest.approx(7)
    clock.t += 7
    assert b.in_backoff(key, finished) == 0
    clock.t += 601                       # ran fine for more than 2 x cap: the back-off is forgotten
    assert b.in_backoff(key, clock.t) == 0
    assert b.next(key, clock.t) == 10


def test_backoff_base_is_injectable():
    clock = Clock()
    b = Backoff(clock, initial=0.5, cap=15)
    assert [b.next("k", clock.t) for _ in range(7)] == [0.5, 1, 2, 4, 8, 15, 15]


@pytest.mark.parametrize("seconds, text", [(10, "10s"), (40, "40s"), (80, "1m20s"), (160, "2m40s"), (300, "5m0s")])
def test_go_durations_as_the_kubelet_prints_them(seconds, text):
    assert go_duration(seconds) == text


def test_exit_codes_of_signalled_processes_are_128_plus_the_signal():
    assert exit_code(-9) == 137 and exit_code(-15) == 143 and exit_code(3) == 3


def spec(kind, success=1, failure=3):
    return ProbeSpec(kind, {"httpGet": {"path": "/", "port": 80}}, success_threshold=success, failure_threshold=failure)


def test_readiness_starts_failed_and_flips_after_the_thresholds():
    s = ProbeState(spec("readiness", success=2, failure=3))
    assert s.result is False
    assert s.record(True) is False and s.result is False     # 1 of 2 successes
    assert s.record(True) is True and s.result is True
    assert s.record(True) is False
    assert [s.record(False) for _ in range(3)] == [False, False, True] and s.result is False
    assert s.record(True) is False and s.record(False) is False   # a lone success resets the run


def test_liveness_starts_healthy_and_fails_after_failure_threshold_consecutive_failures():
    s = ProbeState(spec("liveness", failure=3))
    assert s.result is True
    assert [s.record(x) for x in (False, False, True, False, False)] == [False] * 5 and s.result is True
    assert s.record(False) is True and s.result is False


def test_startup_reports_started_once():
    s = ProbeState(spec("startup"))
    assert not s.started
    assert s.record(True) is True and s.started
    assert s.record(True) is False


def test_probe_spec_takes_the_api_servers_defaults():
    p = ProbeSpec.from_container("readiness", {"readinessProbe": {"httpGet": {"path": "/ready", "port": "http"}}})
    assert (p.initial_delay, p.period, p.timeout, p.success_threshold, p.failure_threshold) == (0, 10, 1, 1, 3)
    assert ProbeSpec.from_container("liveness", {}) is None


def test_named_probe_ports_resolve_through_the_containers_ports():
    container = {"name": "auth", "ports": [{"name": "http", "containerPort": 3000}]}
    assert resolve_port("http", container) == 3000 and resolve_port(8080, container) == 8080
    with pytest.raises(ValueError, match="not a port of container"):
        resolve_port("metrics", container)


def test_the_exit_watcher_reports_each_exit_code_once():
    watcher = ExitWatcher()
    seen: dict[int, int] = {}
    done = threading.Event()

    def cb(proc):
        def record(code):
            seen[proc.pid] = code
            if len(seen) == 3:
                done.set()
        return record

    try:
        procs = [subprocess.Popen([sys.executable, "-c", f"import sys; sys.exit({n})"]) for n in (0, 3)]
        procs.append(subprocess.Popen(["sleep", "30"]))
        for p in procs:
            watcher.watch(p, cb(p))
        procs[2].kill()
        assert done.wait(10)
        assert [seen[p.pid] for p in procs] == [0, 3, 137]
    finally:
        watcher.stop()


def test_timers_run_in_time_order_and_cancelled_ones_not_at_all():
    timers = Timers("test-timers")
    order: list[str] = []
    done = threading.Event()
    try:
        timers.after(0.2, lambda: (order.append("late"), done.set()))
        cancelled = timers.after(0.05, lambda: order.append("cancelled"))
        timers.after(0.0, lambda: order.append("first"))
        timers.after(0.1, lambda: 1 / 0)              # a failing callback does not stop the others
        Timers.cancel(cancelled)
        assert done.wait(5)
        assert order == ["first", "late"]
    finally:
        timers.stop()


def test_pod_ips_are_distinct_loopback_addresses_skipping_taken_ports():
    ips = IPAllocator(start=(200 << 8) + 253)
    with socket.socket() as taken:
        taken.bind(("127.0.200.254", 0))
        port = taken.getsockname()[1]
        first = ips.allocate([port])
        assert first == "127.0.200.253"
        second = ips.allocate([port])
        assert second == "127.0.201.1"            # .254 had the port taken, .255 and .0 are skipped
    ips.release(first)
    assert first not in ips.in_use() and second in ips.in_use()
    assert ips.allocate([]) == "127.0.201.2"     # released addresses are not reused at once
