"""`taly release create|list|show|history`, the catalogue, the ledger and the lock against moto over HTTP.

The session's moto_server holds, for this module, the backups buckets of a dev and a staging environment
(versioned, as the estate's are); each test's project root (`make_contract.project`) holds their contracts,
the repo's chart and migrations, and points boto3's standard chain at moto. The conditional writes are moto's
own: `If-None-Match: *` and `If-Match` on put_object and delete_object are enforced by the server (a 412), not
by anything in taly. The tests that race writers for one key use `atomic_moto_server` instead: moto checks a
condition and then writes in two steps, and S3 in one (conftest.py). One test runs on the shared local estate
(`--env local`, its own emulator's bucket).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
import threading
import time
from pathlib import Path

import pytest

from taly_ops.adapters.aws import Aws
from taly_ops.adapters.s3_store import Store
from taly_ops.local import aws_emulator
from taly_ops.operations.releases import entries
from taly_ops.operations.releases.catalogue import Catalogue, ReleaseExists
from taly_ops.operations.releases.ledger import Ledger
from taly_ops.operations.releases.lock import LOCK, EnvironmentLock, LockHeld
from taly_ops.operations.releases.record import Release
from taly_platform.catalog import SERVICE_NAMES

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
BUCKETS = {"dev": "taly-rel-dev-backups", "staging": "taly-rel-staging-backups"}
REGISTRY = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"


def ref(service: str, fill: str = "a", tag: str = "1.4.2") -> str:
    return f"{REGISTRY}/taly/{service}:{tag}@sha256:{fill * 64}"


@pytest.fixture(scope="module")
def buckets(moto_server) -> dict[str, str]:
    s3 = aws_emulator.client("s3", moto_server)
    for bucket in BUCKETS.values():
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    return BUCKETS


@pytest.fixture
def project(tmp_path, moto_server, buckets, make_contract):
    """A project root with dev and staging contracts, the chart and the migrations; each test empties the buckets'
    releases/ first, so it starts from an empty catalogue and ledger."""
    p = make_contract.project(tmp_path, *(make_contract(env, buckets={"backups": b}) for env, b in buckets.items()),
                              aws_endpoint=moto_server)
    shutil.copytree(REPO / "charts", tmp_path / "charts")
    shutil.copytree(REPO / "migrations", tmp_path / "migrations")
    s3 = aws_emulator.client("s3", moto_server)
    for bucket in buckets.values():
        for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix="releases/"):
            for v in page.get("Versions", []) + page.get("DeleteMarkers", []):
                s3.delete_object(Bucket=bucket, Key=v["Key"], VersionId=v["VersionId"])
    return p


def store(moto_server: str, env: str = "staging") -> Store:
    return Store(BUCKETS[env], Aws(aws_emulator.target(moto_server)))


def images_file(root: Path, name: str = "images.yaml", **fills: str) -> Path:
    path = root / name
    path.write_text("".join(f"{s}: {ref(s, fills.get(s, 'a'))}\n" for s in SERVICE_NAMES))
    return path


def one_line(result) -> str:
    lines = [line for line in result.stderr.splitlines() if not line.startswith("hint:")]
    assert len(lines) == 1 and "Traceback" not in result.output + result.stderr, result.stderr
    return lines[0]


# --- create, list, show -----------------------------------------------------------------------------------------

def test_create_list_and_show_through_the_cli(taly, project):
    run = taly.with_args(env=project.env)
    created = run("release", "create", "--env", "dev", "--images", images_file(project.root), "-o", "json")
    assert created.exit_code == 0, created.stderr
    record = taly.json(created)
    assert record["created"] is True and record["environment"] == "dev"
    assert record["location"] == f"s3://{BUCKETS['dev']}/releases/catalogue/{record['id']}.json"
    assert record["images"] == {s: ref(s) for s in sorted(SERVICE_NAMES)}
    assert record["chart"] == {"name": "taly-service", "version": "0.1.0"}
    assert record["database"]["schema_version"] == "0_init"
    assert record["created_by"].count("@") == 1

    listed = taly.json(run("release", "list", "--env", "dev", "-o", "json"))
    assert [r["id"] for r in listed["releases"]] == [record["id"]] and listed["damaged"] == []
    assert listed["current"] is None
    as_table = run("release", "list", "--env", "dev")
    assert as_table.exit_code == 0 and record["id"] in as_table.stdout
    assert "dev runs no recorded release" in as_table.stdout
    shown = run("release", "show", record["id"], "--env", "dev", "-o", "json")
    assert shown.exit_code == 0 and taly.json(shown) == {k: v for k, v in record.items()
                                                         if k not in ("environment", "location", "created", "dry_run")}
    table = run("release", "show", record["id"], "--env", "dev")
    assert record["id"] in table.stdout and ref("auth") in table.stdout  # whole, never cut
    # staging's catalogue is another bucket: it has none of dev's releases
    assert taly.json(run("release", "list", "--env", "staging", "-o", "json"))["releases"] == []
    missing = run("release", "show", record["id"], "--env", "staging")
    assert missing.exit_code == 2 and f"no release {record['id']} in the staging catalogue" in one_line(missing)
    audit = [a for a in taly.audit(project.state / "dev") if a["what"] == "release.create"]
    assert [(a["outcome"], a["after"]["release"]) for a in audit] == [("created", record["id"])]


def test_a_dry_run_writes_nothing(taly, project, moto_server):
    result = taly("release", "create", "--env", "dev", "--images", images_file(project.root), "--dry-run",
                  env=project.env)
    assert result.exit_code == 0, result.stderr
    assert "would be written to the dev catalogue" in result.stdout
    assert list(store(moto_server, "dev").keys("releases/")) == []
    assert taly.audit(project.state / "dev") == []


def test_a_release_id_is_never_overwritten(project, moto_server, monkeypatch):
    """Same second, same content: the same release (nothing written twice). Another record under that id, by
    taly or by anyone with S3 access: refused by S3 itself, and the record stays as it was."""
    from taly_ops.operations.releases import actions

    for key, value in project.env.items():
        monkeypatch.setenv(key, value)
    at = dt.datetime(2026, 3, 1, 12, 0, 0, 250_000, tzinfo=dt.timezone.utc)
    request = actions.CreateRequest("dev", images_file(project.root), None, None)
    first = actions.create(request, clock=lambda: at)
    again = actions.create(request, clock=lambda: at + dt.timedelta(milliseconds=500))
    assert first.created and not again.created and again.release == first.release
    assert first.release.id.startswith("rel-20260301T120000Z-")
    s3 = store(moto_server, "dev")
    catalogue = Catalogue(s3, "dev")
    before = s3.get(catalogue.key(first.release.id))
    other = Release.make({**first.release.images, "auth": ref("auth", "f")}, first.release.chart,
                         first.release.config_revision, first.release.database,
                         created_at=first.release.created_at, created_by="mallory@elsewhere")
    forged = Release.model_construct(**{**other.__dict__, "id": first.release.id})
    with pytest.raises(ReleaseExists, match="already holds a release with other content"):
        catalogue.put(forged)
    assert s3.put_new(catalogue.key(first.release.id), b"{}") is None  # S3's own answer: 412
    after = s3.get(catalogue.key(first.release.id))
    assert (after.body, after.etag) == (before.body, before.etag)
    assert [a["outcome"] for a in json_lines(project.state / "dev" / "audit.log")] == ["created", "exists"]


def json_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.parametrize("text,expect", [
    ("auth: " + f"{REGISTRY}/taly/auth:1.4.2\n", r"images.yaml:1: auth: image '.*auth:1.4.2' is not pinned by digest"),
    ("".join(f"{s}: {ref(s)}\n" for s in SERVICE_NAMES if s != "payment")
     + f"payment: {REGISTRY}/taly/payment:latest\n", r"images.yaml:10: payment: image .* is not pinned by digest"),
    ("auth: [unclosed\n", r"images.yaml:\d+: broken YAML"),
    ("just a string\n", "expected a mapping of service -> image"),
    (f"auth: {ref('auth')}\n", "no image for api-gateway, content"),
    (f"billing: {ref('billing')}\n", "'billing' is not a service of the catalog"),
])
def test_a_bad_images_file_is_one_line_exit_2_and_writes_nothing(taly, project, moto_server, text, expect):
    path = project.root / "images.yaml"
    path.write_text(text)
    result = taly("release", "create", "--env", "dev", "--images", path, env=project.env)
    assert result.exit_code == 2, result.output
    assert re.search(expect, one_line(result)), result.stderr
    assert list(store(moto_server, "dev").keys("releases/")) == []
    assert taly.audit(project.state / "dev") == []


@pytest.mark.parametrize("args,expect", [
    (("--env", "dev"), "give --images FILE, --from-env ENV, or both"),
    (("--env", "qa", "--images", "{images}"), "unknown environment 'qa'"),
    (("--env", "dev", "--images", "{root}"), "is a directory"),
    (("--env", "dev", "--images", "{root}/absent.yaml"), "no such file"),
    (("--env", "dev", "--images", "{images}", "--migrations", "{root}/charts"), "not a migration directory name"),
    (("--from-env", "staging", "--images", "{images}"), "staging runs no recorded release"),
])
def test_bad_create_options_are_one_line_exit_2(taly, project, args, expect):
    images = images_file(project.root)
    argv = [a.format(images=images, root=project.root) for a in args]
    result = taly("release", "create", *argv, env=project.env)
    assert result.exit_code == 2 and expect in one_line(result), result.output


def test_an_unreachable_bucket_is_exit_3(taly, project, make_contract):
    make_contract.write(project.root, make_contract("dev", buckets={"backups": "taly-rel-no-such-bucket"}))
    result = taly("release", "create", "--env", "dev", "--images", images_file(project.root), env=project.env)
    assert result.exit_code == 3 and "taly-rel-no-such-bucket does not exist" in one_line(result)


# --- from what an environment runs -------------------------------------------------------------------------------

def test_create_from_what_an_environment_runs_with_some_images_replaced(taly, project, moto_server):
    run = taly.with_args(env=project.env)
    base = taly.json(run("release", "create", "--env", "staging", "--images", images_file(project.root), "-o", "json"))
    led = Ledger(store(moto_server), "staging")
    operation = entries.new_operation_id(led.clock())
    led.append(entries.Started, operation=operation, action="promote", release=base["id"])
    led.append(entries.Outcome, operation=operation, result="succeeded", running=base["id"])
    changed = project.root / "changed.yaml"
    changed.write_text(f"auth: {ref('auth', 'b', '1.5.0')}\n")
    result = run("release", "create", "--from-env", "staging", "--images", changed, "-o", "json")
    assert result.exit_code == 0, result.stderr
    made = taly.json(result)
    assert made["environment"] == "staging" and made["based_on"] == base["id"]
    assert made["images"] == {**base["images"], "auth": ref("auth", "b", "1.5.0")}
    listed = taly.json(run("release", "list", "--env", "staging", "-o", "json"))
    assert [r["id"] for r in listed["releases"]] == [base["id"], made["id"]] and listed["current"] == base["id"]
    into_dev = taly.json(run("release", "create", "--from-env", "staging", "--env", "dev", "-o", "json"))
    assert into_dev["environment"] == "dev" and into_dev["images"] == base["images"]
    assert into_dev["location"].startswith(f"s3://{BUCKETS['dev']}/")


# --- the ledger ------------------------------------------------------------------------------------------------------

@pytest.fixture
def racing(atomic_moto_server) -> str:
    """The moto whose conditional writes are atomic, as S3's (conftest.py), with an empty staging bucket: for the
    tests that race writers for one key (plain moto lets two simultaneous writers both win once in ~4,000)."""
    s3 = aws_emulator.client("s3", atomic_moto_server)
    if BUCKETS["staging"] not in {b["Name"] for b in s3.list_buckets()["Buckets"]}:
        s3.create_bucket(Bucket=BUCKETS["staging"], CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
        s3.put_bucket_versioning(Bucket=BUCKETS["staging"], VersioningConfiguration={"Status": "Enabled"})
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=BUCKETS["staging"], Prefix="releases/"):
        for v in page.get("Versions", []) + page.get("DeleteMarkers", []):
            s3.delete_object(Bucket=BUCKETS["staging"], Key=v["Key"], VersionId=v["VersionId"])
    return atomic_moto_server


def writer(url: str, by: str) -> Ledger:
    """A ledger writer with its own client and connections, as another process would have."""
    return Ledger(store(url), "staging", by=by)


def race(*calls) -> list:
    """Run the calls at once (released together by a barrier); each one's result or exception."""
    barrier = threading.Barrier(len(calls))
    results: list = [None] * len(calls)

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = calls[i]()
        except Exception as exc:  # noqa: BLE001 - the test inspects it
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_two_writers_of_entry_n_exactly_one_wins_and_the_loser_is_told_who(racing):
    from taly_ops.operations.releases.ledger import LedgerConflict

    ana, bo = writer(racing, "ana@laptop"), writer(racing, "bo@ci-runner")
    op = entries.new_operation_id(ana.clock())
    for n in range(10):  # each round both decided from entry n and want to write n + 1
        results = race(*(lambda w=w: w.append(entries.Gate, after=n, operation=op, gate=w.by, verdict="pass")
                         for w in (ana, bo)))
        won = [r for r in results if isinstance(r, entries.Gate)]
        lost = [r for r in results if isinstance(r, LedgerConflict)]
        assert len(won) == 1 and len(lost) == 1, results
        assert won[0].seq == n + 1 and f"entry {n + 1} of the staging ledger was written meanwhile: gate by " \
            f"{won[0].by}" in lost[0].message
        assert ana.entry(n + 1) == won[0]
    assert ana.current().seq == 10


def test_concurrent_appends_step_over_each_other_and_lose_nothing(racing):
    writers = [writer(racing, f"w{i}@host") for i in range(3)]
    op = entries.new_operation_id(writers[0].clock())

    def appends(w: Ledger) -> list[int]:
        return [w.append(entries.Step, operation=op, step=f"{w.by}-{k}", outcome="ok").seq for k in range(8)]

    results = race(*(lambda w=w: appends(w) for w in writers))
    seqs = sorted(s for r in results for s in r)
    assert seqs == list(range(1, 25)), results
    history = writers[0].history()
    assert history.damaged == [] and history.total == 24 and history.pointer.seq == 24
    assert sorted(e.step for e in history.entries) == sorted(f"w{i}@host-{k}" for i in range(3) for k in range(8))


def test_history_names_a_damaged_entry_and_exits_1(taly, project, moto_server):
    led = writer(moto_server, "ana@laptop")
    op = entries.new_operation_id(led.clock())
    rel = "rel-20260301T120000Z-0000aaaa"
    led.append(entries.Started, operation=op, action="promote", release=rel, source_env="dev")
    led.append(entries.Gate, operation=op, gate="freeze-window", verdict="pass")
    led.append(entries.Approval, operation=op, approver="carol", via="ci", reference="https://ci/run/7")
    led.append(entries.Outcome, operation=op, result="succeeded", running=rel)
    def run(*output: str):
        return taly("release", "history", "--env", "staging", *output, env=project.env)

    intact = run("-o", "json")
    assert intact.exit_code == 0, intact.stderr
    data = taly.json(intact)
    assert [e["kind"] for e in data["entries"]] == ["started", "gate", "approval", "outcome"]
    assert data["current"]["release"] == rel and data["current"]["since"] == 4 and data["lock"] is None
    assert data["entries"][2]["summary"] == "approved by carol (ci: https://ci/run/7)"

    s3 = aws_emulator.client("s3", moto_server)
    s3.put_object(Bucket=BUCKETS["staging"], Key="releases/ledger/0000000002.json", Body=b'{"seq": 2, "kind": "ga')
    table = run()
    assert table.exit_code == 1 and "Traceback" not in table.output
    assert "damaged releases/ledger/0000000002.json: not JSON" in table.stdout
    assert f"staging runs {rel} (since entry 4)" in table.stdout
    damaged = run("-o", "json")
    assert damaged.exit_code == 1
    assert [d["key"] for d in taly.json(damaged)["damaged"]] == ["releases/ledger/0000000002.json"]
    assert [e["seq"] for e in taly.json(damaged)["entries"]] == [1, 3, 4]


# --- the lock ----------------------------------------------------------------------------------------------------------

class Clock:
    """Starts at the real time (the CLI reads the lock by the real clock) and moves when the test says."""

    def __init__(self) -> None:
        self.now = dt.datetime.now(dt.timezone.utc)

    def __call__(self) -> dt.datetime:
        return self.now


def test_the_lock_refuses_a_second_holder_is_taken_over_only_when_stale_and_asked_and_released(
        taly, project, moto_server):
    clock = Clock()
    ana = EnvironmentLock(store(moto_server), "staging", project.state / "ana", clock, 120, "ana@laptop")
    bo = EnvironmentLock(store(moto_server), "staging", project.state / "bo", clock, 120, "bo@ci-runner")
    held = ana.acquire("promote rel-20260301T120000Z-0000aaaa to staging")
    clock.now += dt.timedelta(seconds=95)
    with pytest.raises(LockHeld, match=r"held by ana@laptop \(pid \d+\) for 'promote rel-.* to staging': taken "
                                       r"1m35s ago .*last heartbeat 1m35s ago$"):
        bo.acquire("rollback staging", take_over_stale=True)
    shown = taly.json(taly("release", "history", "--env", "staging", "-o", "json", env=project.env))
    assert shown["lock"]["holder"]["holder"] == "ana@laptop" and shown["lock"]["stale"] is False

    clock.now += dt.timedelta(seconds=30)  # ana's process died: no heartbeat for 125 s
    with pytest.raises(LockHeld, match=r"last heartbeat 2m05s ago, stale \(TTL 120s\)"):
        bo.acquire("rollback staging")
    assert taly.audit(project.state / "bo") == []
    taken = bo.acquire("rollback staging", take_over_stale=True)
    [audited] = taly.audit(project.state / "bo")
    assert (audited["what"], audited["outcome"]) == ("release.lock.takeover", "taken-over")
    assert audited["before"]["holder"]["holder"] == "ana@laptop" and audited["after"]["holder"] == "bo@ci-runner"

    assert held.beat() is False and held.release() is False  # ana never removes bo's lock
    assert json.loads(store(moto_server).get(LOCK).body)["holder"] == "bo@ci-runner"
    assert taken.release() is True
    with pytest.raises(KeyError):
        store(moto_server).get(LOCK)
    again = ana.acquire("promote rel-20260301T120000Z-0000aaaa to staging")  # over the delete marker
    assert again.release()


def test_of_two_acquiring_at_once_exactly_one_holds_the_lock(racing, tmp_path):
    for n in range(10):
        ana = EnvironmentLock(store(racing), "staging", tmp_path, holder="ana@laptop")
        bo = EnvironmentLock(store(racing), "staging", tmp_path, holder="bo@ci-runner")
        results = race(lambda: ana.acquire(f"promote {n}"), lambda: bo.acquire(f"rollback {n}"))
        held = [r for r in results if not isinstance(r, Exception)]
        refused = [r for r in results if isinstance(r, LockHeld)]
        assert len(held) == 1 and len(refused) == 1, results
        assert f"held by {held[0].record.holder}" in refused[0].message
        assert held[0].release()


def test_the_heartbeat_thread_keeps_the_lock_fresh_until_released(project, moto_server):
    lock = EnvironmentLock(store(moto_server), "staging", project.state, holder="ana@laptop")
    s3 = store(moto_server)
    held = lock.acquire("promote")
    held.start_heartbeat(period=0.05)
    with held:  # the heartbeat already runs: the context only releases on the way out
        first = held.record.heartbeat_at
        deadline = dt.datetime.now() + dt.timedelta(seconds=20)
        while dt.datetime.fromisoformat(json.loads(s3.get(LOCK).body)["heartbeat_at"]) == first:
            assert dt.datetime.now() < deadline, "no heartbeat reached the bucket"
            time.sleep(0.02)
        held.check()
    with pytest.raises(KeyError):
        s3.get(LOCK)
    assert held.lost == "released"


# --- the local estate ----------------------------------------------------------------------------------------------

def test_releases_on_the_local_estate(taly, local_estate, tmp_path):
    """`--env local`: the catalogue and the ledger in the estate's own emulator bucket; removed afterwards."""
    run = taly.local(local_estate)
    s3 = aws_emulator.client("s3", local_estate.endpoints["aws"]["endpoint_url"])
    bucket = local_estate.contract["buckets"]["backups"]
    try:
        created = run("release", "create", "--images", images_file(tmp_path), "-o", "json")
        assert created.exit_code == 0, created.stderr
        record = taly.json(created)
        assert record["location"] == f"s3://{bucket}/releases/catalogue/{record['id']}.json"
        assert [r["id"] for r in taly.json(run("release", "list", "-o", "json"))["releases"]] == [record["id"]]
        assert run("release", "show", record["id"], "-o", "json").exit_code == 0
        history = run("release", "history")
        assert history.exit_code == 0 and "no entries" in history.stdout and "lock: free" in history.stdout
    finally:
        for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix="releases/"):
            for v in page.get("Versions", []) + page.get("DeleteMarkers", []):
                s3.delete_object(Bucket=bucket, Key=v["Key"], VersionId=v["VersionId"])


def test_a_damaged_record_is_named_by_show_and_listed_apart(taly, project, moto_server):
    run = taly.with_args(env=project.env)
    good = taly.json(run("release", "create", "--env", "dev", "--images", images_file(project.root), "-o", "json"))
    bad = taly.json(run("release", "create", "--env", "dev", "--images",
                        images_file(project.root, "other.yaml", auth="b"), "-o", "json"))
    key = f"releases/catalogue/{bad['id']}.json"
    s3 = aws_emulator.client("s3", moto_server)
    edited = json.loads(s3.get_object(Bucket=BUCKETS["dev"], Key=key)["Body"].read())
    edited["images"]["auth"] = ref("auth", "c")  # someone with write access swapped an image
    s3.put_object(Bucket=BUCKETS["dev"], Key=key, Body=json.dumps(edited).encode())
    shown = run("release", "show", bad["id"], "--env", "dev")
    assert shown.exit_code == 1
    assert f"s3://{BUCKETS['dev']}/{key} is damaged: its content does not match its content_digest" \
        in one_line(shown)
    listed = run("release", "list", "--env", "dev", "-o", "json")
    assert listed.exit_code == 0
    assert [r["id"] for r in taly.json(listed)["releases"]] == [good["id"]]
    assert [d["key"] for d in taly.json(listed)["damaged"]] == [key]
