"""The stand-in service's pieces: options, dependencies from the environment, answers, metrics text."""

from __future__ import annotations

import subprocess
import sys

import pytest

from taly_ops.local import standin


def opts(*argv, env=None):
    return standin.parse_args(list(argv), env or {})


def test_options_come_from_arguments_and_the_port_from_the_environment_when_set():
    o = opts("--service", "auth", "--version", "1.4.2", "--error-rate", "0.25", "--latency-ms", "40",
             "--host", "127.0.20.1", "--port", "3000", env={"PORT": "3100"})
    assert (o["service"], o["version"], o["error_rate"], o["latency"], o["host"], o["port"]) == \
        ("auth", "1.4.2", 0.25, 0.04, "127.0.20.1", 3100)
    assert opts(env={"TALY_SERVICE": "users"})["service"] == "users"


@pytest.mark.parametrize("argv, word", [
    (["--service"], "no value"), (["--colour", "red"], "unknown option"), ([], "no service"),
    (["--service", "a", "--behaviour", "flaky"], "behaviour"), (["--service", "a", "--error-rate", "2"], "0..1"),
    (["--service", "a", "--port", "x"], "invalid literal"),
])
def test_bad_options_are_value_errors(argv, word):
    with pytest.raises(ValueError, match=word):
        opts(*argv)


def test_dependencies_are_what_the_configuration_names():
    env = {"DATABASE_HOST": "127.0.0.1", "DATABASE_PORT": "5433", "REDIS_HOST": "127.0.0.1", "REDIS_PORT": "6380",
           "REDIS_PASSWORD": "pw", "AMQP_ENDPOINT": "amqp://user@127.0.0.1:5673/vhost"}
    assert standin.dependencies(env) == {"database": ("postgres", "127.0.0.1", 5433),
                                         "cache": ("redis", "127.0.0.1", 6380, "pw"),
                                         "broker": ("amqp", "127.0.0.1", 5673)}
    managed = standin.dependencies({"AMQP_ENDPOINT": "amqp://h:1", "AMQP_MANAGEMENT_URL": "http://127.0.0.1:15672/",
                                    "AMQP_USERNAME": "taly", "AMQP_PASSWORD": "pw"})
    assert managed == {"broker": ("management", "http://127.0.0.1:15672/", "taly", "pw")}
    assert standin.dependencies({}) == {}


def service(behaviour="healthy", error_rate=0.0, down=None, deps=None):
    svc = standin.Service(dict(opts("--service", "auth", "--version", "2.0", "--behaviour", behaviour,
                                    "--error-rate", str(error_rate))), deps or {})
    svc.down = dict(down or {})
    return svc


def test_health_ready_and_the_api():
    svc = service()
    assert standin.answer(svc, "GET", "/health")[0] == 200
    assert standin.answer(svc, "GET", "/ready")[0] == 200
    assert standin.answer(svc, "GET", "/api/items/7")[0] == 200
    assert standin.answer(svc, "POST", "/api/items")[0] == 201
    assert standin.answer(svc, "GET", "/nope")[0] == 404
    assert {k: n for k, n in svc.requests.items() if n} == {("GET", "/api/items/:id", "200"): 1,
                                                            ("POST", "/api/items", "201"): 1}
    # Every route's 5xx series is there from the start, at 0: the error-rate ratio exists without errors.
    assert {k for k, n in svc.requests.items() if not n} == {(m, r, "500") for m, r in standin.ROUTES}


def test_the_work_queue_is_consumed_when_the_configuration_names_it_and_its_login():
    env = {"AMQP_ENDPOINT": "amqp://127.0.0.1:5673", "TALY_QUEUE": "taly.auth", "AMQP_USERNAME": "taly",
           "AMQP_PASSWORD": "pw"}
    assert standin.work_queue(env) == ("127.0.0.1", 5673, "taly.auth", ("taly", "pw"))
    assert standin.work_queue({**env, "TALY_QUEUE": ""}) is None
    assert standin.work_queue({k: v for k, v in env.items() if k != "AMQP_USERNAME"}) is None
    svc = service()
    svc.consuming("taly.auth", "ConnectionRefusedError: refused")
    assert standin.answer(svc, "GET", "/ready")[0] == 503  # not consuming: not ready
    svc.consuming("taly.auth", "")
    assert standin.answer(svc, "GET", "/ready")[0] == 200


def test_never_ready_and_a_dead_dependency_fail_ready_but_not_health():
    status, _, body = standin.answer(service("never-ready"), "GET", "/ready")
    assert status == 503 and "never" in body
    svc = service(down={"cache": "ConnectionRefusedError: [Errno 111] Connection refused"},
                  deps={"cache": ("redis", "127.0.0.1", 1, "")})
    status, _, body = standin.answer(svc, "GET", "/ready")
    assert status == 503 and "Connection refused" in body
    assert standin.answer(svc, "GET", "/health")[0] == 200
    assert standin.answer(svc, "GET", "/api/items")[0] == 503      # no cache, no service


def test_error_rate_one_fails_every_api_request():
    svc = service(error_rate=1.0)
    assert {standin.answer(svc, "GET", "/api/items")[0] for _ in range(5)} == {500}


def test_metrics_carry_the_series_the_alerts_and_slo_queries_read():
    svc = service(deps={"database": ("postgres", "h", 1)}, down={"database": "down"})
    svc.observe("GET", "/api/items", 200, 0.03)
    svc.observe("GET", "/api/items", 500, 0.7)
    text = svc.metrics()
    lines = text.splitlines()
    assert 'http_requests_total{service="auth",version="2.0",method="GET",route="/api/items",status="500"} 1' in lines
    labels = 'service="auth",version="2.0",method="GET",route="/api/items"'
    assert f'http_request_duration_seconds_bucket{{{labels},le="0.05"}} 1' in lines
    assert f'http_request_duration_seconds_bucket{{{labels},le="1.0"}} 2' in lines
    assert f'http_request_duration_seconds_bucket{{{labels},le="+Inf"}} 2' in lines
    assert f"http_request_duration_seconds_count{{{labels}}} 2" in lines
    assert 'taly_build_info{service="auth",version="2.0"} 1' in lines
    assert 'taly_dependency_up{service="auth",dependency="database"} 0' in lines
    assert "# TYPE http_request_duration_seconds histogram" in lines and text.endswith("\n")


def run_standin(*argv):
    return subprocess.run([sys.executable, "-I", "-S", str(standin.__file__), *argv], capture_output=True, text=True,
                          timeout=30, env={"PATH": "/usr/bin:/bin"})


def test_a_crash_image_exits_non_zero_at_start_and_bad_options_exit_2_in_one_line():
    crashed = run_standin("--service", "auth", "--behaviour", "crash")
    assert crashed.returncode == 1 and "crashes at start" in crashed.stderr
    bad = run_standin("--service", "auth", "--behaviour", "odd")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "Traceback" not in bad.stderr
