"""`taly local`: the real servers, started by the same launcher code the CLI uses, into a temporary state dir.

What only looks runs against the session's shared estate (conftest.py `local_estate`). What kills
components or takes the estate down has an estate of its own (`own`, small): the restart of stopped
components, then `down` (after a killed drill), last.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from taly_ops.errors import BadInput
from taly_ops.local import estate, postgres, prometheus, rabbitmq, redis, sample_data, supervisor
from taly_ops.local.state import STATE_FILE, Component, State, load

pytestmark = pytest.mark.integration

COMPONENTS = set(estate.ORDER)
OWN_SIZE = 1_000


@pytest.fixture
def local(local_estate) -> State:
    return local_estate


@pytest.fixture(scope="module")
def own(estate_factory) -> State:
    """The module's own estate, for the tests that kill its components and take it down."""
    return estate_factory("taly-local-test-", OWN_SIZE)


def _status_json(taly, state_dir: Path) -> tuple[int, dict, str]:
    result = taly("local", "status", "--state-dir", state_dir, "-o", "json")
    return result.exit_code, taly.json(result), result.stdout


def test_every_component_runs_with_a_pid_and_port(local):
    components = {c.name: c for c in load(local.state_dir).components}
    assert set(components) == COMPONENTS
    for c in components.values():
        assert c.running, f"{c.name} (pid {c.pid}) is not running"
        assert c.pid > 0 and c.port and 1024 < c.port < 65536, c
        assert supervisor.port_open(c.port), f"{c.name} does not listen on {c.port}"
    assert len({c.port for c in components.values()}) == len(components)


def test_state_file_is_private_and_holds_a_contract(local):
    from taly_platform.contract import EnvironmentContract

    path = local.state_dir / STATE_FILE
    assert path.stat().st_mode & 0o777 == 0o600
    data = json.loads(path.read_text())
    contract = EnvironmentContract(**data["contract"])
    assert contract.environment == "local"
    assert contract.database.port == data["endpoints"]["postgres"]["primary"]["port"]
    assert contract.cache.port == data["endpoints"]["redis"]["primary"]["port"]
    assert data["endpoints"]["postgres"]["replica"]["password"]  # secrets live here, and only here


def test_postgres_replica_streams_and_holds_the_sample_data(local, estate_db):
    pg = estate_db.conninfo
    rows = postgres._query(pg(local), "SELECT application_name, state, client_addr::text FROM pg_stat_replication")
    assert rows and rows[0][1] == "streaming", rows
    assert postgres._query(pg(local, "replica"), "SELECT pg_is_in_recovery()")[0][0] is True

    primary = sample_data.fingerprint(pg(local))
    total = sum(count for count, _ in primary.values())
    assert total == local.size, primary
    assert all(count > 0 for count, _ in primary.values()), primary
    assert sample_data.fingerprint(pg(local, "replica")) == primary  # replicated, row for row


def test_sample_data_is_deterministic(local, estate_db):
    """A second build of the same size, in a second database, is identical row for row."""
    pg = estate_db.conninfo
    postgres._query(pg(local, dbname="postgres"), "CREATE DATABASE taly_rebuild")
    try:
        sample_data.load(pg(local, dbname="taly_rebuild"), local.size)
        assert sample_data.fingerprint(pg(local, dbname="taly_rebuild")) == sample_data.fingerprint(pg(local))
    finally:
        postgres._query(pg(local, dbname="postgres"), "DROP DATABASE taly_rebuild")


def test_redis_replica_is_linked(local):
    e = local.endpoints["redis"]
    info = redis.info(e["replica"]["port"], e["password"])
    assert info["role"] == "slave"
    assert info["master_link_status"] == "up"
    assert int(info["master_port"]) == e["primary"]["port"]
    assert redis.info(e["primary"]["port"], e["password"])["connected_slaves"] == "1"


def test_rabbitmq_has_the_queues_and_dead_letter_queues(local):
    e = local.endpoints["rabbitmq"]
    queues = {q["name"]: q for q in rabbitmq.api_get(e["management_port"], e["password"], "queues/%2F")}
    services = rabbitmq.broker_services()
    assert services
    for svc in services:
        work, dlq = queues[f"taly.{svc}"], queues[f"taly.{svc}.dlq"]
        assert work["durable"] and dlq["durable"]
        assert work["arguments"]["x-dead-letter-exchange"] == "taly.dlx"
    exchange = rabbitmq.api_get(e["management_port"], e["password"], "exchanges/%2F/taly.dlx")
    assert exchange["type"] == "direct"
    bound = {b["destination"] for b in rabbitmq.api_get(e["management_port"], e["password"],
                                                         "exchanges/%2F/taly.dlx/bindings/source")}
    assert bound == {f"taly.{svc}.dlq" for svc in services}


def test_moto_holds_the_environment_records(local):
    from taly_ops.local import aws_emulator

    url = local.endpoints["aws"]["endpoint_url"]
    buckets = local.contract["buckets"]
    s3 = aws_emulator.client("s3", url)
    names = {b["Name"] for b in s3.list_buckets()["Buckets"]}
    assert {buckets["media"], buckets["backups"], buckets["logs"]} <= names
    for name in buckets.values():
        block = s3.get_public_access_block(Bucket=name)["PublicAccessBlockConfiguration"]
        assert block == {"BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True,
                         "RestrictPublicBuckets": True}
        assert s3.get_bucket_versioning(Bucket=name)["Status"] == "Enabled"
        rule = s3.get_bucket_encryption(Bucket=name)["ServerSideEncryptionConfiguration"]["Rules"][0]
        assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    transitions = s3.get_bucket_lifecycle_configuration(Bucket=buckets["media"])["Rules"][0]["Transitions"]
    assert {(t["Days"], t["StorageClass"]) for t in transitions} == {(30, "STANDARD_IA"), (90, "GLACIER")}

    rds = aws_emulator.client("rds", url).describe_db_instances()["DBInstances"]
    assert {i["DBInstanceIdentifier"] for i in rds} == {local.contract["database"]["primary_id"],
                                                       *local.contract["database"]["replica_ids"]}
    ssm = aws_emulator.client("ssm", url)
    port = ssm.get_parameter(Name="/taly/local/booking/DATABASE_PORT")["Parameter"]["Value"]
    assert port == str(local.contract["database"]["port"])
    secret = aws_emulator.client("secretsmanager", url).get_secret_value(SecretId=local.contract["database"]["master_secret_arn"])
    assert json.loads(secret["SecretString"])["password"] == local.endpoints["postgres"]["primary"]["password"]


def test_prometheus_is_ready_and_scrapes_every_target(local):
    port = int(local.endpoints["prometheus"]["url"].rsplit(":", 1)[1])
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/-/ready", timeout=5) as resp:
        assert resp.status == 200
    deadline = time.monotonic() + 20
    while True:
        targets = prometheus.targets(port)
        health = {t["job"]: t["health"] for t in targets}
        if set(health) == {"prometheus", "postgres", "redis", "rabbitmq", "kube-state-metrics", "kubernetes-pods"} \
                and {t["health"] for t in targets} == {"up"}:
            break
        assert time.monotonic() < deadline, f"targets not all up after 20 s: {targets}"
        time.sleep(0.5)


def test_prometheus_evaluates_the_estates_alert_rules(local):
    port = int(local.endpoints["prometheus"]["url"].rsplit(":", 1)[1])
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/rules", timeout=5) as resp:
        groups = {g["name"]: g for g in json.load(resp)["data"]["groups"]}
    assert {"taly-slo", "taly-kubernetes", "taly-data"} <= set(groups)
    alerts = {r["name"] for g in groups.values() for r in g["rules"] if r["type"] == "alerting"}
    assert {"DeadLetterQueueNotEmpty", "DatabaseReplicationLag", "RabbitMQMemoryAlarm"} <= alerts


def test_status_json_shape_through_the_cli(local, taly):
    code, data, raw = _status_json(taly, local.state_dir)
    assert code == 0
    assert {c["name"] for c in data["components"]} == COMPONENTS
    for c in data["components"]:
        assert {"name", "pid", "port", "status"} <= set(c)
        assert c["status"] == "running"
    table = taly("local", "status", "--state-dir", local.state_dir)
    assert table.exit_code == 0 and "postgres-replica" in table.stdout
    for secret in ("postgres", "redis", "rabbitmq"):
        password = {"postgres": local.endpoints["postgres"]["primary"]["password"],
                    "redis": local.endpoints["redis"]["password"],
                    "rabbitmq": local.endpoints["rabbitmq"]["password"]}[secret]
        assert password not in raw and password not in table.stdout


def test_second_up_is_idempotent(local):
    before = {c.name: c.pid for c in load(local.state_dir).components}
    again = estate.up(local.state_dir, size=local.size)
    assert again.already_running
    assert {c.name: c.pid for c in again.state.components} == before


def test_a_state_file_up_cannot_restart_from_is_refused_and_left_for_down(tmp_path, taly):
    """A state file without recorded ports (an older taly, or an `up` that never finished) is not replaced:
    `up` refuses (exit 2) naming `taly local down`, and touches nothing; `down` then stops what is left."""
    gone = subprocess.Popen(["true"])
    gone.wait()
    survivor = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        state = State(state_dir=tmp_path, phase="running", size=OWN_SIZE, components=[
            Component("redis-primary", gone.pid, 6390, pgid=gone.pid),
            Component("moto", survivor.pid, 6391, start_time=supervisor.start_time(survivor.pid), pgid=survivor.pid),
        ])
        state.save()
        (tmp_path / "redis" / "primary").mkdir(parents=True)
        (tmp_path / "logs").mkdir()

        code, data, _ = _status_json(taly, tmp_path)
        assert code == 1
        assert {c["name"]: c["status"] for c in data["components"]} == {"redis-primary": "stopped", "moto": "running"}

        with pytest.raises(BadInput, match="did not record its ports") as refused:
            estate.reconcile(tmp_path)
        assert f"taly local down --state-dir {tmp_path}" in refused.value.hint
        assert supervisor.alive(survivor.pid)  # nothing was stopped
        assert (tmp_path / STATE_FILE).exists() and (tmp_path / "redis" / "primary").is_dir()

        result = estate.down(tmp_path)  # asked for: what is left of it is stopped, its files removed
        assert {s["name"] for s in result.stopped} == {"redis-primary", "moto"}
        assert not supervisor.alive(survivor.pid)
        assert not (tmp_path / STATE_FILE).exists()
        assert not (tmp_path / "redis").exists() and not (tmp_path / "logs").exists()
    finally:
        if survivor.poll() is None:
            survivor.kill()
            survivor.wait()


def test_up_restarts_what_stopped_on_the_same_ports_over_the_same_data(own, estate_db, taly):
    """Issue 10 item 4: with the Redis replica (and the PostgreSQL primary) killed, `up` used to call the state
    file stale, stop everything and start a new estate on new ports: every backup and drill history gone."""
    import signal

    from taly_ops.local import aws_emulator

    pg = estate_db.conninfo
    before = {c.name: c for c in load(own.state_dir).components}
    bucket = own.contract["buckets"]["backups"]
    s3 = aws_emulator.client("s3", own.endpoints["aws"]["endpoint_url"])
    s3.put_object(Bucket=bucket, Key="backups/kept/manifest.json", Body=b"{}")
    postgres._query(pg(own), "CREATE TABLE kept_across_restart (n int); INSERT INTO kept_across_restart VALUES (42)")
    fingerprint = sample_data.fingerprint(pg(own))
    # The estate commits asynchronously (synchronous_commit = off): wait until the write left the primary.
    deadline = time.monotonic() + 20
    while postgres._query(pg(own, "replica"), "SELECT count(*) FROM pg_class WHERE relname = 'kept_across_restart'") \
            != [(1,)]:
        assert time.monotonic() < deadline, "the write never reached the replica"
        time.sleep(0.1)
    for name in ("redis-replica", "postgres-primary"):
        os.kill(before[name].pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while supervisor.alive(before["redis-replica"].pid) or supervisor.alive(before["postgres-primary"].pid):
        assert time.monotonic() < deadline
        time.sleep(0.05)

    result = taly("local", "up", "--state-dir", own.state_dir, "--size", OWN_SIZE, "-o", "json")
    assert result.exit_code == 0, result.stderr
    data = taly.json(result)
    after = {c.name: c for c in load(own.state_dir).components}
    assert {n: c.port for n, c in after.items()} == {n: c.port for n, c in before.items()}  # the same ports
    assert s3.get_object(Bucket=bucket, Key="backups/kept/manifest.json")["Body"].read() == b"{}"
    assert "stale" not in result.stderr
    assert data["restarted"] == ["postgres-primary", "redis-replica"] and data["already_running"] is False
    assert all(c.running for c in after.values())
    assert {n: c.pid for n, c in after.items() if n not in data["restarted"]} == \
        {n: c.pid for n, c in before.items() if n not in data["restarted"]}  # the rest untouched
    assert postgres._query(pg(own), "SELECT n FROM kept_across_restart") == [(42,)]  # the same data
    assert sample_data.fingerprint(pg(own)) == fingerprint
    e = own.endpoints["redis"]
    assert redis.info(e["replica"]["port"], e["password"])["master_link_status"] == "up"
    postgres._query(pg(own), "INSERT INTO kept_across_restart VALUES (43)")
    deadline = time.monotonic() + 20  # the replica streams again from the restarted primary
    while postgres._query(pg(own, "replica"), "SELECT count(*) FROM kept_across_restart") != [(2,)]:
        assert time.monotonic() < deadline, "the replica never caught up"
        time.sleep(0.2)


def _gone(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat[stat.rfind(")") + 2] in "ZX"  # a zombie waiting for init runs nothing


def test_down_stops_every_recorded_process_and_what_a_killed_drill_left(own, taly, wait_for_scratch,
                                                                       drill_processes):
    """`taly local down` stops exactly what `up` started, by pid, and removes the state files. Issue 10 item 2:
    a drill SIGKILLed mid-restore first leaves its scratch PostgreSQL, which down reaps; `taly drill reap`
    then works on the registry alone, estate or no estate."""
    local = own
    cli = taly.local(own)
    made = cli("backup", "create", "-o", "json")
    assert made.exit_code == 0, made.stderr
    proc = subprocess.Popen(cli.held("restore", 60, "drill", "restore", "--env", "local", "--state-dir", own.state_dir),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        entry = wait_for_scratch(proc, lambda: cli.drill_registry(own.state_dir), timeout=30)
        proc.kill()
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert supervisor.alive(entry["pid"], entry["start_time"])  # SIGKILL runs no teardown

    components = load(local.state_dir).components
    pids = {c.name: c.pid for c in components}
    ports = [c.port for c in components]
    down = taly("local", "down", "--state-dir", local.state_dir, "-o", "json")
    assert down.exit_code == 0, down.stderr
    assert {s["name"] for s in taly.json(down)["stopped"]} == COMPONENTS
    assert f"reaped {entry['drill_id']}" in down.stderr
    assert not supervisor.alive(entry["pid"], entry["start_time"])
    assert drill_processes(entry["drill_id"]) == [] and not Path(entry["dir"]).exists()
    deadline = time.monotonic() + 5
    while not all(_gone(pid) for pid in pids.values()) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert [name for name, pid in pids.items() if not _gone(pid)] == []
    assert [p for p in ports if supervisor.port_open(p)] == []
    # Nothing `up` created is left: only what operations record (the audit log, the drill registry).
    left = {str(p.relative_to(local.state_dir)) for p in local.state_dir.rglob("*")}
    assert left == {"audit.log", "drills", "drills/registry.json", "drills/registry.json.lock"}, left
    assert estate.status(local.state_dir)["components"] == []
    after = taly("local", "status", "--state-dir", local.state_dir, "-o", "json")
    assert after.exit_code == 2 and after.stdout == ""  # no estate is configuration: exit 2, one line
    assert after.stderr.startswith(f"error: no local estate in {local.state_dir}: run `taly local up`")

    reap = cli("drill", "reap", "-o", "json")
    assert reap.exit_code == 0, reap.stderr  # no estate: the registry is all reap needs
    assert cli.json(reap)["reaped"] == []
