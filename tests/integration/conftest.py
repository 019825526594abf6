"""What the integration tests share. Use these fixtures; a test imports no helper module (the classes behind
them are in harness.py; beside the tests are only data and scripts: `pii_rows.py` rows of personal data,
`hooked_taly.py` the CLI held at a step, run through `taly.held`, and `atomic_moto.py` behind
`atomic_moto_server`).

Estates (real servers, started by the same launcher as `taly local up`, in world-searchable dirs under /tmp:
as root PostgreSQL runs as `postgres`, which cannot enter pytest's tmp dirs):

- `local_estate` (session): ONE running local estate (10 000 rows: 20 tenants) for every test that can
  leave it as it found it. A test that changes rows puts them back; a test that damages a backup removes it
  (`backups.remove`); a test that stops a component (or moto, to bring a deleted bucket back) calls
  `heal_estate(state)` afterwards (in a `finally`): `taly local up` starts what stopped again, on the same
  ports over the same data, and `state` is reloaded in place (a restarted moto is seeded afresh: new ARNs).
- `estate_factory` (module): `estate_factory(prefix, size) -> State`, an estate of the module's own, taken
  down after the module, for tests that take it down or kill it mid-drill.
  Every estate's drill leftovers are reaped before it goes down, as `taly local down` does.
- `postgres_server` (session): one throwaway PostgreSQL (the drills' scratch launcher) besides the estate;
  each module works in databases of its own on it.
- `moto_server` (session): the local estate's AWS emulator launcher (`local/aws_emulator.spawn`) on a free
  port, for the cloud paths (AWS_ENDPOINT_URL at it); stopped by pid. Each module seeds names of its own.
- `atomic_moto_server` (session): the same, with moto's S3 PutObject/DeleteObject handlers under one lock
  (`atomic_moto.py`), so a conditional write's check and write are one step as in S3; for tests that race
  writers for one key (plain moto lets two simultaneous writers both win about once in 4,000 races).
- `public_dir(prefix)`: a world-searchable dir under /tmp, removed at the end of the session.

Commands and data:

- `taly`: `taly(*args, env=None)` runs the CLI in-process (CliRunner, stderr apart); `taly.local(state)` and
  `taly.with_args(*tail, env=...)` are the same runner with arguments appended / an environment set;
  `taly.json(result)` parses stdout; `taly.held(step, seconds, *args)` is the argv of the CLI held at a
  step (for signals and kills); `taly.audit(dir)` and `taly.drill_registry(dir)` read what it records.
- `backups`: the local estate's backups bucket: `create(state)` (a manifest), `flip_byte(state, key)`,
  `truncate(state, key)`, `remove(state, backup_id)`, `s3(state)`, `bucket(state)`.
- `make_contract`: THE contract factory. `make_contract(env="dev", **sections)` a valid EnvironmentContract
  as a dict; each keyword replaces a field, or is merged into a section given as a dict
  (`database={"port": 5433}`). `make_contract.from_estate(state, env, **sections)` is the local estate's own
  contract renamed to env (its endpoints the local servers, its secrets in the estate's emulator).
  `make_contract.project(root, *contracts, aws_endpoint=None)` a project root holding them (and the
  runbooks), with the environment that points `taly` at it; `make_contract.write(root, contract)` one file.
- `estate_db`: `conninfo(state, role="primary", dbname="taly")` of the estate's PostgreSQL servers, and
  `wait_replica(state)` until the replica has replayed the primary's writes so far (backups read it).
- `wait_for_scratch(proc, registry, timeout)`: the registry entry of a drill's scratch instance once it
  accepts connections; `drill_processes(drill_id)`: the live processes of a drill's scratch instance.
- `kubectl`: `kubectl(state, *args, check=True)` runs the real kubectl against an estate's cluster as a person
  does (KUBECONFIG=<state>/kubeconfig, context taly-local); the CompletedProcess (asserting exit 0 when `check`).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import sys
import tempfile
import urllib.request
from pathlib import Path
from typing import Callable

import pytest

pytest.register_assert_rewrite("harness")

import harness  # noqa: E402
from taly_ops.errors import BadInput  # noqa: E402
from taly_ops.local import aws_emulator, estate, kube, scratch_postgres, supervisor  # noqa: E402
from taly_ops.local.state import State  # noqa: E402

SHARED_SIZE = 10_000


# --- directories ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def public_dir(request) -> Callable[[str], Path]:
    """public_dir(prefix): a fresh dir under /tmp that PostgreSQL's OS user can enter; gone after the session."""
    made: list[Path] = []

    def make(prefix: str) -> Path:
        root = Path(tempfile.mkdtemp(prefix=prefix))
        os.chmod(root, 0o755)
        made.append(root)
        return root

    request.addfinalizer(lambda: [shutil.rmtree(root, ignore_errors=True) for root in made])
    return make


# --- estates ----------------------------------------------------------------------------------------------

def _start_estate(request: pytest.FixtureRequest, root: Path, size: int) -> State:
    """Bring an estate up in root/state; the finalizer reaps its drills and takes it down whatever happened.

    Missing prerequisites fail the tests: they are not skipped into a green run.
    """
    from taly_ops.operations import drills

    state_dir = root / "state"

    def teardown() -> None:
        try:
            drills.reap_before_down(state_dir)  # a failed test may have left a kept scratch instance
        except Exception as exc:  # noqa: BLE001 - the estate goes down regardless
            print(f"reaping drills before down failed: {exc}", file=sys.stderr)
        try:
            estate.down(state_dir)
        finally:
            shutil.rmtree(root, ignore_errors=True)

    request.addfinalizer(teardown)
    state_dir.mkdir()
    try:
        estate.preflight(state_dir)
    except BadInput as exc:
        pytest.fail(f"local estate prerequisites missing: {exc.message} ({exc.hint})")
    result = estate.up(state_dir, size=size, progress=lambda line: print(line, file=sys.stderr))
    assert not result.already_running, "a fresh state dir cannot hold a running estate"
    return result.state


def _wait_settled(state: State, timeout: float = 30) -> None:
    """Until Prometheus has scraped every target since it came up (RabbitMQ is the last to answer), and every
    Deployment of the cluster is available (a fault a test undid may have made pods unready for a while)."""
    url = state.endpoints["prometheus"]["url"]

    def settled() -> bool:
        with urllib.request.urlopen(f"{url}/api/v1/query?query=up", timeout=2) as resp:
            series = json.load(resp)["data"]["result"]
        return len(series) >= 4 and all(s["value"][1] == "1" for s in series)

    supervisor.wait_until(settled, component="prometheus", what="every scrape target up", timeout=timeout)
    cluster = kube.client(state.state_dir)
    supervisor.wait_until(lambda: not kube.unavailable(cluster), component="kube", what="every Deployment available",
                          timeout=timeout)


@pytest.fixture(scope="session")
def local_estate(request, public_dir) -> State:
    """The session's shared estate, settled: Prometheus has scraped every target since it came up."""
    state = _start_estate(request, public_dir("taly-shared-estate-"), SHARED_SIZE)
    _wait_settled(state)
    return state


@pytest.fixture(scope="session")
def heal_estate() -> Callable[[State], list[str]]:
    """heal(state): start whatever of the estate has stopped (same ports, same data), reload `state` in place;
    the names restarted."""
    def heal(state: State) -> list[str]:
        result = estate.up(state.state_dir, size=state.size)
        assert result.state.phase == "running" and not result.state.dead(), result.to_json()
        _wait_settled(result.state)
        for f in dataclasses.fields(State):
            if f.compare:  # not the lock
                setattr(state, f.name, getattr(result.state, f.name))
        return result.restarted

    return heal


@pytest.fixture(scope="module")
def estate_factory(request, public_dir) -> Callable[[str, int], State]:
    """estate_factory(prefix, size): an estate of the module's own, down after the module."""
    def start(prefix: str, size: int) -> State:
        return _start_estate(request, public_dir(prefix), size)

    return start


@pytest.fixture(scope="session")
def wait_for_scratch():
    return harness.wait_for_scratch


@pytest.fixture(scope="session")
def drill_processes():
    return harness.drill_processes


@pytest.fixture(scope="session")
def estate_db() -> harness.EstateDb:
    return harness.EstateDb()


# --- commands and data -------------------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def taly() -> harness.Taly:
    return harness.Taly()


@pytest.fixture(scope="session")
def backups() -> harness.Backups:
    return harness.Backups()


@pytest.fixture(scope="session")
def make_contract() -> harness.ContractFactory:
    return harness.ContractFactory()


# --- servers besides the estate ---------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def postgres_server(request, public_dir) -> harness.PostgresServer:
    """A throwaway PostgreSQL 15 (the drills' scratch launcher: user taly, TLS, its own port); stopped by pid."""
    root = public_dir("taly-test-postgres-")
    s = scratch_postgres.prepare(root / "pg", supervisor.free_port())
    request.addfinalizer(lambda: scratch_postgres.stop(s.pid, s.start_time, s.pgid))
    scratch_postgres.initdb(s)
    scratch_postgres.spawn(s)
    scratch_postgres.wait_ready(s)
    return harness.PostgresServer(s.port, s.password)


@pytest.fixture(scope="session")
def moto_server(request, public_dir) -> str:
    """moto_server through the estate's own launcher; its URL. Missing moto fails, never skips."""
    problems = aws_emulator.preflight()
    assert not problems, problems
    root = public_dir("taly-moto-")
    port = supervisor.free_port()
    spawned = aws_emulator.spawn(port, root / "moto.log", root)
    request.addfinalizer(lambda: supervisor.stop(spawned.pid, spawned.start_time, pgid=spawned.pgid, timeout=10))
    supervisor.wait_until(lambda: supervisor.port_open(port), component="moto", what="listening port", timeout=30,
                          log=root / "moto.log", pid=spawned.pid)
    return aws_emulator.endpoint(port)


@pytest.fixture(scope="session")
def atomic_moto_server(request, public_dir) -> str:
    """moto_server with its S3 object writes atomic, as S3's are (`atomic_moto.py`: moto checks a write's
    condition and then writes, and two writers released together can both pass); for tests that race writers."""
    root = public_dir("taly-atomic-moto-")
    port = supervisor.free_port()
    spawned = supervisor.spawn([sys.executable, str(Path(__file__).with_name("atomic_moto.py")), "-H", "127.0.0.1",
                                "-p", str(port)], log=root / "moto.log", cwd=root)
    request.addfinalizer(lambda: supervisor.stop(spawned.pid, spawned.start_time, pgid=spawned.pgid, timeout=10))
    supervisor.wait_until(lambda: supervisor.port_open(port), component="moto", what="listening port", timeout=30,
                          log=root / "moto.log", pid=spawned.pid)
    return aws_emulator.endpoint(port)


@pytest.fixture
def rollout_cluster(tmp_path):
    """`rollout_cluster(never_ready=())`: an in-process cluster (store, API server, controllers, stub
    kubelet) with a kubeconfig, `kubectl(...)`, the official `client()` and a movable clock; stopped after."""
    import rollout_cluster as rc

    started = []

    def make(never_ready: tuple[str, ...] = ()) -> rc.RolloutCluster:
        cluster = rc.RolloutCluster(tmp_path, never_ready=never_ready).start()
        started.append(cluster)
        return cluster
    yield make
    for cluster in started:
        cluster.stop()


@pytest.fixture(scope="session")
def kubectl() -> harness.Kubectl:
    return harness.Kubectl()
