"""`taly health` against the real local estate, with real faults injected; the Kubernetes checks against
the estate's own cluster, through the official client (a bad release rolled out and undone with kubectl).

The session's shared estate (conftest.py `local_estate`). Every fault is undone before the test ends:
a DLQ filled then purged, a bucket's public access block deleted then restored, Redis frozen then
thawed; Prometheus or the PostgreSQL replica stopped, then started again by `taly local up` (which
restarts what stopped, on the same ports over the same data), and health is ok again.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from typer.testing import CliRunner

from taly_ops.app import app
from taly_ops.health.thresholds import Thresholds
from taly_ops.local import postgres, prometheus, supervisor
from taly_ops.local.state import State, load


pytestmark = pytest.mark.integration

STATUSES = {"ok", "warn", "unknown", "fail"}
CHECK_KEYS = {"component", "name", "status", "observed", "threshold", "detail", "duration_ms"}


@pytest.fixture
def local(local_estate) -> State:
    """The session's shared estate (conftest.py); tests that damage it heal it before they end."""
    return local_estate


def health(state: State | None, *args: str, env: dict[str, str] | None = None):
    """(exit code, parsed JSON or None, the CliRunner result)."""
    argv = ["health", *args]
    if state is not None:
        argv += ["--env", "local", "--state-dir", str(state.state_dir)]
    result = CliRunner().invoke(app, argv, env=env)
    data = None
    if "-o" in args or "--output" in args:
        try:
            data = json.loads(result.stdout)
        except ValueError:
            pass
    return result.exit_code, data, result


def checks(data: dict, component: str | None = None, name: str | None = None) -> list[dict]:
    return [c for c in data["checks"] if (component is None or c["component"] == component)
            and (name is None or c["name"] == name)]


def one(data: dict, component: str, name: str) -> dict:
    found = checks(data, component, name)
    assert len(found) == 1, f"{component}/{name} not in {[(c['component'], c['name']) for c in data['checks']]}"
    return found[0]


def secrets(state: State) -> list[str]:
    e = state.endpoints
    return [e["postgres"]["primary"]["password"], e["redis"]["password"], e["rabbitmq"]["password"]]


# --- a healthy estate -----------------------------------------------------------------------------------

def test_healthy_estate_exits_0_with_every_check_in_json(local):
    code, data, result = health(local, "-o", "json")
    assert code == 0, result.output
    assert set(data) >= {"environment", "status", "checks"}
    assert data["environment"] == "local"
    assert data["components"] == ["postgres", "redis", "rabbitmq", "s3", "aws", "kubernetes", "slo"]
    for c in data["checks"]:
        assert set(c) == CHECK_KEYS and c["status"] in STATUSES and isinstance(c["duration_ms"], int)
        assert c["detail"], c
    # The cluster runs every service: their stand-ins consume the work queues and serve traffic, so
    # every check, the SLOs included, has a verdict, and it is ok.
    assert [c for c in data["checks"] if c["status"] != "ok"] == []
    for name in ("error rate", "latency p95", "latency p99", "pod restarts (1h)"):
        assert "service" in one(data, "slo", name)["observed"] or "pod" in one(data, "slo", name)["observed"]
    assert one(data, "kubernetes", "deployment search")["observed"] == "2/2 updated, 2/2 available, 2 ready"
    assert data["status"] == "ok"
    assert one(data, "postgres", "taly-local-db-replica-1: replication")["status"] == "ok"
    assert not any(s in result.stdout for s in secrets(local))


def test_table_output_and_strict(local, tmp_path):
    code, _, result = health(local, "--component", "redis", "--component", "rabbitmq", env={"COLUMNS": "220"})
    assert code == 0, result.output
    for word in ("component", "check", "status", "observed", "threshold", "detail", "PONG", "consumers"):
        assert word in result.stdout
    assert not any(s in result.stdout for s in secrets(local))
    code, _, _ = health(local, "-c", "rabbitmq", "--strict")
    assert code == 0  # every work queue is consumed (by the cluster's stand-ins): nothing to warn about
    strict = tmp_path / "health.yaml"
    strict.write_text("rabbitmq:\n  queue_depth: {warn: -1}\n")  # any depth, even 0, warns
    code, _, result = health(local, "-c", "rabbitmq", "--thresholds", str(strict))
    assert code == 0 and "warn" in result.stdout, result.output
    code, _, _ = health(local, "-c", "rabbitmq", "--thresholds", str(strict), "--strict")
    assert code == 1  # a warning fails under --strict


def test_component_filter(local):
    code, data, result = health(local, "-o", "json", "-c", "redis", "-c", "s3,aws")
    assert code == 0, result.output
    assert {c["component"] for c in data["checks"]} == {"redis", "s3", "aws"}
    assert data["components"] == ["redis", "s3", "aws"]


def test_bad_environment_or_component_is_exit_2(local):
    code, _, result = health(None, "--env", "qa")
    assert code == 2
    assert "unknown environment 'qa'; known: local, dev, staging, prod" in result.stderr
    code, _, result = health(local, "-c", "mysql")
    assert code == 2
    assert "unknown component 'mysql'; known: postgres, redis, rabbitmq, s3, aws, kubernetes, slo" in result.stderr
    code, data, result = health(local, "-c", "kubernetes", "-o", "json")
    assert code == 0 and data["components"] == ["kubernetes"], result.output  # the local estate has a cluster


def test_contract_environment_without_its_file_names_the_pulumi_command(tmp_path):
    (tmp_path / "Pulumi.yaml").write_text("name: taly\n")
    code, _, result = health(None, "--env", "staging", env={"TALY_PROJECT_ROOT": str(tmp_path)})
    assert code == 2
    assert "pulumi stack output --stack staging --json > contracts/staging.json" in result.stderr


def test_no_local_estate_is_exit_2(tmp_path):
    code, _, result = health(None, "--env", "local", "--state-dir", str(tmp_path / "none"))
    assert code == 2
    assert "no local estate in " in result.stderr and "run `taly local up`" in result.stderr


def test_watch_prints_one_json_line_per_run_until_ctrl_c(local):
    taly = shutil.which("taly", path=str(Path(sys.executable).parent)) or "taly"
    proc = subprocess.Popen([taly, "health", "--env", "local", "--state-dir", str(local.state_dir), "-c", "redis",
                             "-o", "json", "--watch", "0.2"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines = [proc.stdout.readline() for _ in range(2)]
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
    runs = [json.loads(line) for line in lines]
    assert [r["environment"] for r in runs] == ["local", "local"]
    assert all(r["exit_code"] == 0 for r in runs)
    assert proc.returncode == 0, proc.stderr.read()


# --- faults that heal ------------------------------------------------------------------------------------

def _rabbit(state: State, method: str, path: str, body: dict | None = None):
    r = state.endpoints["rabbitmq"]
    req = urllib.request.Request(f"{r['management_url']}api/{path}", method=method,
                                 data=json.dumps(body).encode() if body is not None else None)
    req.add_header("Authorization", "Basic " + base64.b64encode(f"{r['user']}:{r['password']}".encode()).decode())
    req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=5) as resp:
        raw = resp.read()
        return json.loads(raw) if raw else None


def _publish(state: State, queue: str, n: int) -> None:
    for i in range(n):
        routed = _rabbit(state, "POST", "exchanges/%2F/amq.default/publish", {
            "properties": {}, "routing_key": queue, "payload": f"dead letter {i}", "payload_encoding": "string"})
        assert routed["routed"], routed


def _until(state: State, predicate, *args: str, timeout: float = 15.0):
    """Run health until predicate(data) holds (the management API refreshes its counts every 5 s)."""
    deadline = time.monotonic() + timeout
    while True:
        code, data, result = health(state, "-o", "json", *args)
        if predicate(data) or time.monotonic() > deadline:
            return code, data
        time.sleep(0.5)


def test_dead_letters_warn_then_fail_past_the_threshold(local):
    dlq = "taly.payment.dlq"
    limit = int(Thresholds().rabbitmq.dead_letters.fail)
    try:
        _publish(local, dlq, 3)
        code, data = _until(local, lambda d: one(d, "rabbitmq", "dead-letter queues")["status"] != "ok", "-c", "rabbitmq")
        check = one(data, "rabbitmq", "dead-letter queues")
        assert check["status"] == "warn", check
        assert f"{dlq}=3" in check["detail"] and check["observed"].startswith("3 message")
        assert code == 0  # a warning: healthy enough, unless --strict

        _publish(local, dlq, limit - 2)  # 101 in all: past the threshold
        code, data = _until(local, lambda d: one(d, "rabbitmq", "dead-letter queues")["status"] == "fail", "-c", "rabbitmq")
        check = one(data, "rabbitmq", "dead-letter queues")
        assert check["status"] == "fail", check
        assert f"{dlq}={limit + 1}" in check["detail"]
        assert code == 1
    finally:
        _rabbit(local, "DELETE", f"queues/%2F/{urllib.parse.quote(dlq, safe='')}/contents")
    code, data = _until(local, lambda d: one(d, "rabbitmq", "dead-letter queues")["status"] == "ok", "-c", "rabbitmq")
    assert one(data, "rabbitmq", "dead-letter queues")["status"] == "ok"  # purged: healthy again


def test_deleted_public_access_block_fails_the_bucket(local):
    from taly_ops.local import aws_emulator

    s3 = aws_emulator.client("s3", local.endpoints["aws"]["endpoint_url"])
    bucket = local.contract["buckets"]["backups"]
    flags = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    s3.delete_public_access_block(Bucket=bucket)
    try:
        code, data, result = health(local, "-o", "json", "-c", "s3")
        assert code == 1, result.output
        check = one(data, "s3", "backups: public access block")
        assert check["status"] == "fail" and "NoSuchPublicAccessBlockConfiguration" in check["detail"]
        assert one(data, "s3", "media: public access block")["status"] == "ok"
        assert one(data, "s3", "backups: versioning")["status"] == "ok"
    finally:
        s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration=flags)
    code, data, _ = health(local, "-o", "json", "-c", "s3")
    assert code == 0 and {c["status"] for c in data["checks"]} == {"ok"}


def test_frozen_redis_fails_within_the_timeout_instead_of_hanging(local):
    pids = [load(local.state_dir).component(name).pid for name in ("redis-primary", "redis-replica")]
    timeout = 2.0
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)  # accepts connections (the kernel does), never answers
    try:
        code, data, result = health(local, "-o", "json", "-c", "redis", "--timeout", str(timeout))
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGCONT)
    assert code == 1, result.output
    primary = local.endpoints["redis"]["primary"]
    ping = one(data, "redis", f"primary {primary['host']}:{primary['port']}: ping")
    assert ping["status"] == "fail" and "Timeout" in ping["detail"]
    assert {c["status"] for c in data["checks"]} <= {"fail", "unknown"}
    code, data, _ = health(local, "-o", "json", "-c", "redis")
    assert code == 0, data


# --- faults that `taly local up` heals (same ports, same data) ---------------------------------------------

def test_stopped_prometheus_makes_the_slos_unknown_not_ok(local, heal_estate):
    component = load(local.state_dir).component("prometheus")
    prometheus.stop(component)
    try:
        assert not supervisor.alive(component.pid, component.start_time)
        code, data, result = health(local, "-o", "json", "-c", "slo")
        assert code == 3, result.output  # no verdict at all: unreachable
        assert data["checks"] and {c["status"] for c in data["checks"]} == {"unknown"}
        assert all(c["observed"] == "Prometheus unreachable" for c in data["checks"])
        code, data, _ = health(local, "-o", "json")
        assert not [c for c in data["checks"] if c["status"] == "fail"], data
        assert code == 3 and data["status"] == "unknown"  # everything else answers; the SLOs cannot
    finally:
        assert heal_estate(local) == ["prometheus"]
    code, data, _ = health(local, "-o", "json", "-c", "slo")
    assert one(data, "slo", "scrape targets up")["status"] == "ok"


def test_stopped_replica_fails_replication_naming_it(local, heal_estate):
    replica = load(local.state_dir).component("postgres-replica")
    postgres.stop(replica)  # by its pid
    try:
        assert not supervisor.alive(replica.pid, replica.start_time)
        code, data, result = health(local, "-o", "json", "-c", "postgres")
        assert code == 1, result.output
        rid = local.contract["database"]["replica_ids"][0]
        check = one(data, "postgres", f"{rid}: replication")
        assert check["status"] == "fail"
        assert f"replica {rid}" in check["detail"] and "unreachable" in check["detail"]
        assert one(data, "postgres", f"{rid}: accepting connections")["status"] == "fail"
        assert one(data, "postgres", "taly-local-db: accepting connections")["status"] == "ok"
        assert not any(s in result.stdout for s in secrets(local))
    finally:
        assert heal_estate(local) == ["postgres-replica"]
    code, data, result = health(local, "-o", "json", "-c", "postgres")
    assert code == 0 and {c["status"] for c in data["checks"]} == {"ok"}, result.output


# --- Kubernetes, against the local cluster ---------------------------------------------------------------

def dev_contract(make_contract, root: Path, kube_context: str, namespace: str) -> dict[str, str]:
    """A project root with contracts/dev.json naming the context; the environment to run `taly` in."""
    make_contract.write(root, make_contract("dev", cluster={"kube_context": kube_context, "namespace": namespace}))
    return {"TALY_PROJECT_ROOT": str(root)}


def test_kubernetes_checks_through_the_official_client(local, kubectl, make_contract, tmp_path):
    """The cloud path ($KUBECONFIG, the contract's context) against the local cluster; a crashing release of
    one service fails its Deployment and its pods, and `kubectl rollout undo` heals it."""
    env = dev_contract(make_contract, tmp_path, "taly-local", "taly")
    env["KUBECONFIG"] = str(local.state_dir / "kubeconfig")
    code, data, result = health(None, "--env", "dev", "-c", "kubernetes", "-o", "json", env=env)
    assert code == 0, result.output
    assert {c["status"] for c in data["checks"]} == {"ok"}
    assert one(data, "kubernetes", "api server")["detail"].startswith("GET /api (taly-local) -> v1")
    assert len(checks(data, "kubernetes")) == 3 + 10  # api server, ten Deployments, backing off, restarts

    from taly_ops.local.cluster.images import ImageRegistry
    from taly_ops.local.kube import images_path

    crash = ImageRegistry(images_path(local.state_dir)).push("search", "9.9.9-bad", behaviour="crash")
    kubectl(local, "set", "image", "deployment/search", f"search={crash}")
    try:
        deadline = time.monotonic() + 60
        while True:
            code, data, result = health(None, "--env", "dev", "-c", "kubernetes", "-o", "json", env=env)
            if one(data, "kubernetes", "pods backing off")["status"] == "fail" or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert code == 1, result.output
        backing_off = one(data, "kubernetes", "pods backing off")
        assert backing_off["status"] == "fail" and "CrashLoopBackOff" in backing_off["detail"], backing_off
        assert backing_off["detail"].count("search-") == 1  # maxSurge 1: one new pod, the old two serve on
        stuck = one(data, "kubernetes", "deployment search")
        assert stuck["status"] == "fail" and "updatedReplicas 1 != replicas 2" in stuck["detail"], stuck
        assert one(data, "kubernetes", "deployment content")["status"] == "ok"
    finally:
        kubectl(local, "rollout", "undo", "deployment/search")
        kubectl(local, "rollout", "status", "deployment/search", "--timeout", "60s")
    code, data, result = health(None, "--env", "dev", "-c", "kubernetes", "-o", "json", env=env)
    assert code == 0 and {c["status"] for c in data["checks"]} == {"ok"}, result.output


def test_kubernetes_api_not_answering_fails_liveness(local):
    cluster = load(local.state_dir).component("kube")
    os.kill(cluster.pid, signal.SIGSTOP)  # its port accepts connections (the kernel does), nothing answers
    try:
        code, data, result = health(local, "-c", "kubernetes", "-o", "json", "--timeout", "2")
    finally:
        os.kill(cluster.pid, signal.SIGCONT)
    assert code == 1, result.output
    assert one(data, "kubernetes", "api server")["status"] == "fail"
    assert {c["status"] for c in checks(data, "kubernetes") if c["name"] != "api server"} == {"unknown"}
    code, data, result = health(local, "-c", "kubernetes", "-o", "json")
    assert code == 0, result.output
