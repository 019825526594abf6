"""`taly health` without servers: thresholds, grading, aggregation into a status and an exit code, the
concurrent runner's timeouts, scrubbing, and input validation."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from taly_ops.errors import BadInput
from taly_ops.health.model import CheckResult, Probe, Report, exit_code, verdictless, worst
from taly_ops import environment
from taly_ops.environment import HostPort as Endpoint
from taly_ops.health.thresholds import Floor, Limit, Thresholds, load
from taly_ops.operations import health as ops


def r(component: str, status: str, name: str = "check") -> CheckResult:
    return CheckResult(component, name, status)


# --- thresholds ------------------------------------------------------------------------------------

def test_defaults_are_the_seeds_numbers():
    t = Thresholds()
    assert t.postgres.replication_lag_seconds.fail == 10
    assert (t.slo.error_rate_percent.warn, t.slo.error_rate_percent.fail) == (1, 5)
    assert t.slo.latency_p95_seconds.warn == 0.5 and t.slo.latency_p95_seconds.fail is None
    assert t.slo.latency_p99_seconds.fail == 3
    assert (t.postgres.connections_percent.warn, t.postgres.connections_percent.fail) == (80, 95)
    assert t.redis.memory_percent.warn == 90
    assert (t.rabbitmq.dead_letters.warn, t.rabbitmq.dead_letters.fail) == (0, 100)
    assert t.postgres.xid_headroom_percent.lower_is_worse


@pytest.mark.parametrize("value, expected", [
    (0, "ok"), (80, "ok"), (80.1, "warn"), (95, "warn"), (95.5, "fail"), (None, "unknown"),
])
def test_limit_grades_above_its_bounds(value, expected):
    assert Limit(warn=80, fail=95).grade(value) == expected


def test_dead_letters_warn_past_zero_and_fail_past_the_threshold():
    lim = Thresholds().rabbitmq.dead_letters
    assert [lim.grade(n) for n in (0, 1, 100, 101)] == ["ok", "warn", "warn", "fail"]


def test_floor_grades_below_its_bounds():
    lim = Floor(warn=50, fail=25)
    assert [lim.grade(v) for v in (100, 50, 49.9, 25, 24)] == ["ok", "ok", "warn", "warn", "fail"]
    assert lim.describe(" %") == "warn <50 %, fail <25 %"


def test_limit_with_one_bound_and_descriptions():
    assert Limit(fail=10).grade(11) == "fail" and Limit(fail=10).grade(9) == "ok"
    assert Limit(warn=0.5).grade(100) == "warn"
    assert Limit(warn=1, fail=5).describe(" %") == "warn >1 %, fail >5 %"
    assert Limit(warn=1048576, fail=67108864).describe(" MiB", 1048576) == "warn >1 MiB, fail >64 MiB"
    assert Limit().describe() == "none"


def test_limit_bounds_must_be_ordered():
    with pytest.raises(ValueError):
        Limit(warn=95, fail=80)
    with pytest.raises(ValueError):
        Floor(warn=25, fail=50)


def test_thresholds_file_overrides_only_what_it_names(tmp_path: Path):
    (tmp_path / "health.yaml").write_text("postgres:\n  connections_percent: {warn: 70}\ntimeouts:\n  redis: 1.5\n")
    t, path = load(None, tmp_path)
    assert path == tmp_path / "health.yaml"
    assert (t.postgres.connections_percent.warn, t.postgres.connections_percent.fail) == (70, 95)
    assert t.timeouts.redis == 1.5 and t.timeouts.postgres == 3.0
    assert t.postgres.xid_headroom_percent.lower_is_worse  # the kind of limit survives an override


def test_no_thresholds_file_means_defaults(tmp_path: Path):
    assert load(None, tmp_path) == (Thresholds(), None)
    assert load(None, None) == (Thresholds(), None)


@pytest.mark.parametrize("text, message", [
    ("postgres:\n  conections_percent: {warn: 70}\n", "postgres.conections_percent: is not a known setting"),
    ("redis: [1, 2\n", "broken YAML"),
    ("- a\n- b\n", "expected a mapping"),
    ("slo:\n  error_rate_percent: {warn: 9, fail: 2}\n", "fail must be above warn"),
    ("timeouts:\n  redis: 0\n", "timeouts.redis"),
])
def test_bad_thresholds_files_are_bad_input(tmp_path: Path, text: str, message: str):
    f = tmp_path / "t.yaml"
    f.write_text(text)
    with pytest.raises(BadInput) as exc:
        load(f, None)
    assert message in exc.value.message


@pytest.mark.parametrize("content, message", [(b"\x89PNG\r\n\x1a\n\x00\xff", "binary file"),
                                              (b"slo: \xff\xfe\n", "UTF-8")])
def test_a_thresholds_file_that_is_not_text_is_bad_input_naming_it(tmp_path: Path, content: bytes, message: str):
    f = tmp_path / "t.yaml"
    f.write_bytes(content)
    with pytest.raises(BadInput) as exc:
        load(f, None)
    assert message in exc.value.message and str(f) in exc.value.message


def test_a_thresholds_path_that_is_a_directory_is_bad_input(tmp_path: Path):
    with pytest.raises(BadInput) as exc:
        load(tmp_path, None)
    assert str(tmp_path) in exc.value.message and "directory" in exc.value.message


def test_missing_thresholds_file_is_bad_input(tmp_path: Path):
    with pytest.raises(BadInput, match="cannot read thresholds file"):
        load(tmp_path / "nope.yaml", None)


def test_timeout_option_sets_every_component():
    t = Thresholds().with_timeout(1.5)
    assert {t.timeouts.of(c) for c in ("postgres", "redis", "rabbitmq", "s3", "aws", "kubernetes", "slo")} == {1.5}
    with pytest.raises(BadInput):
        Thresholds().with_timeout(0)


# --- aggregation -----------------------------------------------------------------------------------

def test_worst_orders_fail_over_unknown_over_warn_over_ok():
    assert worst([]) == "ok"
    assert worst(["ok", "warn"]) == "warn"
    assert worst(["warn", "unknown", "ok"]) == "unknown"
    assert worst(["unknown", "fail", "warn"]) == "fail"


@pytest.mark.parametrize("results, strict, code", [
    ([r("postgres", "ok"), r("redis", "ok")], False, 0),
    ([r("postgres", "ok"), r("redis", "warn")], False, 0),
    ([r("postgres", "ok"), r("redis", "warn")], True, 1),
    ([r("postgres", "fail"), r("redis", "ok")], False, 1),
    ([r("postgres", "fail"), r("slo", "unknown")], False, 1),           # a failure outranks unknowns
    ([r("slo", "unknown"), r("slo", "unknown", "other")], False, 3),     # everything unknown: no verdict
    ([r("postgres", "ok"), r("slo", "unknown")], False, 3),              # a component without any verdict
    ([r("slo", "ok"), r("slo", "unknown", "error rate")], False, 0),     # no data beside a verdict: reported only
    ([r("slo", "ok"), r("slo", "unknown", "e"), r("redis", "warn")], True, 1),
    ([r("slo", "unknown"), r("redis", "warn")], True, 3),                # no verdict ranks above a warning
    ([], False, 3),
])
def test_exit_code(results, strict, code):
    assert exit_code(results, strict) == code


def test_verdictless_components():
    assert verdictless([r("slo", "unknown"), r("slo", "unknown"), r("redis", "fail")]) == ["slo"]
    assert verdictless([r("slo", "unknown"), r("slo", "ok")]) == []


def test_report_json_shape():
    rep = Report("local", [r("postgres", "ok"), r("slo", "unknown"), r("slo", "ok", "up")], duration_ms=12,
                 components=["postgres", "slo"])
    data = rep.to_json()
    assert data["environment"] == "local" and data["status"] == "unknown" and data["exit_code"] == 0
    assert data["summary"] == {"ok": 2, "warn": 0, "unknown": 1, "fail": 0}
    assert set(data["checks"][0]) == {"component", "name", "status", "observed", "threshold", "detail", "duration_ms"}


def test_check_result_rejects_unknown_statuses():
    with pytest.raises(ValueError):
        CheckResult("redis", "ping", "great")


# --- the runner ------------------------------------------------------------------------------------

def _sleeper(seconds: float, status: str = "ok"):
    def fn():
        time.sleep(seconds)
        return CheckResult("redis", "slept", status, observed=f"{seconds}")
    return fn


def _meeting(barrier: threading.Barrier):
    """A probe that passes only if every probe of the run is running at the same moment."""
    def fn():
        barrier.wait()  # BrokenBarrierError (the probe fails) when the others never arrive
        return CheckResult("redis", "met", "ok")
    return fn


def test_probes_run_concurrently_and_keep_their_order():
    barrier = threading.Barrier(6, timeout=10)
    probes = [Probe("redis", f"p{i}", _meeting(barrier), timeout=20) for i in range(6)]
    results = ops.run_probes(probes)
    assert [x.status for x in results] == ["ok"] * 6
    assert [x.name for x in results] == ["met"] * 6 and not barrier.broken


def test_sequential_mode_runs_one_after_another():
    running, most = [0], [0]
    lock = threading.Lock()

    def counted():
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(0.05)
        with lock:
            running[0] -= 1
        return CheckResult("redis", "counted", "ok")

    results = ops.run_probes([Probe("redis", f"p{i}", counted) for i in range(4)], parallel=False)
    assert most[0] == 1 and [x.status for x in results] == ["ok"] * 4


def test_a_timed_out_liveness_probe_fails_and_any_other_is_unknown_within_its_timeout():
    release, finished = threading.Event(), []

    def hung():
        release.wait(60)
        finished.append(True)
        return CheckResult("redis", "hung", "ok")

    probes = [Probe("redis", "ping", hung, liveness=True, timeout=0.3),
              Probe("redis", "memory", hung, timeout=0.4),
              Probe("redis", "quick", _sleeper(0.01), timeout=0.3)]
    try:
        ping, memory, quick = ops.run_probes(probes)
        assert not finished  # the run returned while both hung probes were still blocked
    finally:
        release.set()
    assert (ping.status, ping.name, ping.observed) == ("fail", "ping", "timed out")
    assert "timed out after 0.3 s" in ping.detail
    assert memory.status == "unknown" and "timed out after 0.4 s" in memory.detail
    assert quick.status == "ok"


def test_a_probe_that_raises_is_fail_for_liveness_and_unknown_otherwise():
    def boom():
        raise ConnectionRefusedError("connection refused")

    live, other = ops.run_probes([Probe("postgres", "up", boom, liveness=True), Probe("postgres", "lag", boom)])
    assert live.status == "fail" and other.status == "unknown"
    assert "ConnectionRefusedError: connection refused" in other.detail


def test_secrets_are_scrubbed_from_everything_printed():
    res = [CheckResult("redis", "ping s3cr3tpw", "fail", "s3cr3tpw", None, "AUTH s3cr3tpw failed")]
    (clean,) = ops.scrub(res, {"s3cr3tpw"})
    assert "s3cr3tpw" not in f"{clean.name}{clean.observed}{clean.detail}"
    assert clean.detail == "AUTH *** failed"


# --- input -----------------------------------------------------------------------------------------

def test_components_resolve_in_canonical_order():
    assert ops.resolve_components(None) == ["postgres", "redis", "rabbitmq", "s3", "aws", "kubernetes", "slo"]
    assert ops.resolve_components(["slo", "redis,postgres", "redis"]) == ["postgres", "redis", "slo"]


def test_unknown_component_lists_the_known_ones():
    with pytest.raises(BadInput) as exc:
        ops.resolve_components(["redis", "mysql"])
    assert "'mysql'" in exc.value.message and "postgres, redis, rabbitmq, s3, aws, kubernetes, slo" in exc.value.message


def test_unknown_environment_lists_the_known_ones():
    with pytest.raises(BadInput) as exc:
        environment.check_name("qa")
    assert "known: local, dev, staging, prod" in exc.value.message


def test_missing_contract_names_the_pulumi_command(tmp_path: Path):
    with pytest.raises(BadInput) as exc:
        environment.resolve("prod", root=tmp_path)
    assert "pulumi stack output --stack prod --json > contracts/prod.json" in exc.value.message


def test_invalid_contract_is_bad_input(tmp_path: Path):
    (tmp_path / "contracts").mkdir()
    (tmp_path / "contracts" / "dev.json").write_text('{"environment": "dev"}')
    with pytest.raises(BadInput, match="not a valid environment contract"):
        environment.resolve("dev", root=tmp_path)


def test_missing_local_estate_says_to_run_local_up(tmp_path: Path):
    with pytest.raises(BadInput, match=r"no local estate in .*: run `taly local up`"):
        environment.resolve("local", tmp_path / "state")


@pytest.mark.parametrize("text, expected", [
    ("db.example.com", Endpoint("db.example.com", 5432)),
    ("127.0.0.1:48081", Endpoint("127.0.0.1", 48081)),
    ("[::1]:6380", Endpoint("::1", 6380)),
])
def test_endpoint_parse(text, expected):
    assert Endpoint.parse(text, 5432) == expected


def test_watch_returns_the_last_runs_exit_code():
    codes = iter([0, 1, 3])
    shown = []

    def run():
        return Report("local", [r("redis", {0: "ok", 1: "fail", 3: "unknown"}[next(codes)])])

    assert ops.watch(run, 0.01, shown.append, sleep=lambda s: None, runs=3) == 3
    assert len(shown) == 3


def test_watch_stops_on_ctrl_c_with_the_last_code():
    calls = []

    def run():
        calls.append(1)
        return Report("local", [r("redis", "fail")])

    def sleep(seconds):
        raise KeyboardInterrupt

    assert ops.watch(run, 1, lambda rep: None, sleep=sleep) == 1 and len(calls) == 1
    with pytest.raises(BadInput):
        ops.watch(run, 0, lambda rep: None)


# --- checks against fakes of the adapters (no server) -------------------------------------------------

class FakePrometheus:
    """The adapters.prometheus.Prometheus interface: canned answers per query, or an error to raise."""

    url = "http://prometheus.test"

    def __init__(self, answers):
        self.answers, self.asked = answers, []

    def query(self, expr, timeout):
        self.asked.append((expr, timeout))
        answer = self.answers.get(expr, [])
        if isinstance(answer, Exception):
            raise answer
        return answer


class FakeEnvironment:
    def __init__(self, prometheus):
        self._prometheus = prometheus

    def prometheus(self):
        return self._prometheus


def _series(value, **labels):
    return {"metric": labels, "value": [0, str(value)]}


def test_slo_checks_grade_the_worst_series_and_never_call_no_data_ok():
    from taly_ops.health import slo

    error_rate = next(o for o in slo.OBJECTIVES if o.name == "error rate")
    p95 = next(o for o in slo.OBJECTIVES if o.name == "latency p95")
    prom = FakePrometheus({
        error_rate.query: [_series(0.002, service="auth"), _series(0.07, service="payment"), _series("NaN", service="x")],
        p95.query: [_series("NaN", service="search")],  # a ratio over no traffic
        "up": [_series(1, job="postgres", instance="a"), _series(0, job="redis", instance="b")],
    })
    env = FakeEnvironment(prom)
    (rate,) = slo.objective(env, error_rate, Thresholds(), 3.0)
    assert rate.status == "fail" and rate.observed == "7 % (service payment)"
    (latency,) = slo.objective(env, p95, Thresholds(), 3.0)
    assert latency.status == "unknown" and latency.observed == "no data"
    (up,) = slo.scrape_targets(env, 3.0)
    assert up.status == "warn" and "redis@b" in up.detail and up.observed == "1 of 2 up"
    assert all(timeout == 3.0 for _, timeout in prom.asked)


def test_an_unreachable_prometheus_makes_every_slo_unknown():
    from taly_ops.health import slo

    env = FakeEnvironment(FakePrometheus({o.query: ConnectionError("refused") for o in slo.OBJECTIVES}
                                         | {"up": ConnectionError("refused")}))
    results = [r for o in slo.OBJECTIVES for r in slo.objective(env, o, Thresholds(), 2.0)] + slo.scrape_targets(env, 2.0)
    assert {r.status for r in results} == {"unknown"}
    assert all(r.observed == "Prometheus unreachable" and "ConnectionError: refused" in r.detail for r in results)


@pytest.mark.parametrize("width", [80, 100, 140])
def test_the_health_table_never_breaks_a_column_header_inside_a_word(width, capsys, monkeypatch):
    """Issue 10 item 12: piped (80 columns), the headers read "observe/d" and "thresho/ld"."""
    from taly_ops.commands.health import render_table

    monkeypatch.setenv("COLUMNS", str(width))
    checks = [CheckResult("postgres", "taly-local-db-replica-1: replication", "ok", "0.0 s, 0 B",
                          "fail >10 s; bytes warn >256 MiB", "replica taly-local-db-replica-1 (127.0.0.1:37319): "
                          "pg_stat_wal_receiver.status=streaming, replay delay 0.0 s", 12),
              CheckResult("rabbitmq", "consumers", "warn", "0 of 5 work queues consumed", ">= 1 consumer per work queue",
                          "GET /api/queues", 3)]
    render_table(Report(environment="local", checks=checks, duration_ms=40, strict=False,
                        components=["postgres", "rabbitmq"]))
    lines = capsys.readouterr().out.splitlines()
    header = next(line for line in lines if "component" in line)
    cells = [cell.strip() for cell in header.strip("┃ ").split("┃")]
    assert cells == ["component", "check", "status", "observed", "threshold", "detail", "ms"], lines[:5]
    assert all(len(line) <= width for line in lines)
