"""What the integration tests share. Use these fixtures; never import a helper module from a test.

Estates (real servers, started by the same launcher as `taly local up`):

- `local_estate` (session): ONE running local estate (1 000 rows) for every test that leaves it as it
  found it. A test that stops or freezes a component must call `heal_estate(state)` afterwards (in a
  `finally`): `taly local up` starts what stopped again, on the same ports over the same data.
- `estate_factory` (module): `estate_factory(prefix, size, before_down=None) -> State`, an estate of the
  module's own, taken down after the module. For tests that delete its data (a bucket, a database),
  take it down, or need a size of their own.

Commands and data:

- `taly`: `taly(*args, env=None)` runs the CLI in-process (CliRunner, stderr apart) and returns the
  result; `taly.json(result)` parses stdout (failing with stderr when there is none).
- `make_contract`: `make_contract(env="dev", **sections)` a valid EnvironmentContract as a dict; each
  keyword replaces a field, or is merged into a section given as a dict (`database={"port": 5433}`).
  `make_contract.from_estate(state, env)` is the local estate's own contract renamed to env (its
  endpoints are the local servers, its secrets in the estate's emulator).
- `moto_server` (session): the local estate's AWS emulator (`local/aws_emulator.spawn`, moto_server over
  HTTP) on a free port, for tests of the cloud paths (AWS_ENDPOINT_URL at it); stopped by pid.
- `wait_for_scratch`: `wait_for_scratch(proc, registry, timeout)`, the registry entry of a drill's scratch
  instance once it accepts connections.
- `kube` : the Kubernetes API emulator (`kube.deployments`, `kube.pods`, `kube.deployment(...)`,
  `kube.pod(...)`, `kube.write_kubeconfig(...)`).

Modules still importing `estate_fixture` directly (test_drills, test_data_refresh) should switch to
`estate_factory` and `wait_for_scratch`; `estate_fixture.py` goes when nothing imports it.
"""

from __future__ import annotations

import copy
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable

import pytest
from typer.testing import CliRunner

import estate_fixture
import kube_emulator
from taly_ops.app import app
from taly_ops.local import aws_emulator, estate, supervisor
from taly_ops.local.state import State

SHARED_SIZE = 1_000


# --- estates ----------------------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def local_estate(request) -> State:
    """The session's shared estate, settled: Prometheus has scraped every target since it came up."""
    state = estate_fixture.start_local_estate(request, "taly-shared-estate-", SHARED_SIZE)
    estate_fixture.wait_settled(state)
    return state


@pytest.fixture(scope="session")
def heal_estate() -> Callable[[State], list[str]]:
    """heal(state): start whatever of the estate has stopped (same ports, same data); the names restarted."""
    def heal(state: State) -> list[str]:
        result = estate.up(state.state_dir, size=state.size)
        assert result.state.phase == "running" and not result.state.dead(), result.to_json()
        estate_fixture.wait_settled(result.state)
        return result.restarted

    return heal


@pytest.fixture(scope="module")
def estate_factory(request) -> Callable[..., State]:
    def start(prefix: str, size: int, before_down: Callable[[Path], None] | None = None) -> State:
        return estate_fixture.start_local_estate(request, prefix, size, before_down=before_down)

    return start


@pytest.fixture(scope="session")
def wait_for_scratch():
    return estate_fixture.wait_for_scratch


# --- the CLI ------------------------------------------------------------------------------------------------

class Taly:
    def __call__(self, *args: str, env: dict[str, str] | None = None):
        return CliRunner().invoke(app, [str(a) for a in args], env=env)

    @staticmethod
    def json(result) -> Any:
        assert result.stdout.strip(), result.stderr
        return json.loads(result.stdout)


@pytest.fixture(scope="session")
def taly() -> Taly:
    return Taly()


# --- contracts ------------------------------------------------------------------------------------------------

def _contract(env: str) -> dict[str, Any]:
    arn = f"arn:aws:secretsmanager:eu-west-1:123456789012:secret:taly/{env}/{{}}/credentials"
    return {
        "environment": env, "region": "eu-west-1", "dr_region": "eu-central-1", "account_id": "123456789012",
        "vpc_id": "vpc-0123",
        "cluster": {"name": f"taly-{env}", "endpoint": "https://eks.invalid", "namespace": "taly",
                    "oidc_provider_arn": "arn:aws:iam::123456789012:oidc-provider/x", "kube_context": f"taly-{env}"},
        "database": {"primary_id": f"taly-{env}-db", "primary_endpoint": "db.invalid", "port": 5432, "database": "taly",
                     "replica_ids": [], "replica_endpoints": [], "multi_az": False,
                     "master_secret_arn": arn.format("database"), "subnet_group_name": f"taly-{env}-postgres",
                     "drill_security_group_id": "sg-0drill"},
        "cache": {"replication_group_id": f"taly-{env}-cache", "primary_endpoint": "cache.invalid", "reader_endpoint": "",
                  "port": 6379, "automatic_failover": True, "auth_secret_arn": arn.format("cache")},
        "broker": {"broker_id": "b-1", "broker_name": f"taly-{env}-mq", "deployment_mode": "SINGLE_INSTANCE",
                   "credentials_secret_arn": arn.format("broker")},
        "buckets": {"media": f"taly-{env}-media", "backups": f"taly-{env}-backups", "logs": f"taly-{env}-logs"},
        "backup": {"vault_name": f"taly-{env}-vault", "plan_id": "plan-1", "rpo_minutes": 60, "rto_minutes": 240},
        "kms_keys": {}, "service_roles": {}, "web_acl_arn": "arn:aws:wafv2:eu-west-1:123456789012:regional/webacl/x",
        "parameter_prefix": f"/taly/{env}/", "prometheus_endpoint": "https://aps.invalid/workspaces/ws-1/",
        "alarm_topic_arn": f"arn:aws:sns:eu-west-1:123456789012:taly-{env}-alarms",
    }


class ContractFactory:
    def __call__(self, env: str = "dev", **changes: Any) -> dict[str, Any]:
        return self._apply(_contract(env), changes)

    def from_estate(self, state: State, env: str, **changes: Any) -> dict[str, Any]:
        return self._apply({**copy.deepcopy(state.contract), "environment": env}, changes)

    @staticmethod
    def _apply(data: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
        for key, value in changes.items():
            if isinstance(value, dict) and isinstance(data.get(key), dict):
                data[key] = {**data[key], **value}
            else:
                data[key] = value
        return data

    @staticmethod
    def write(root: Path, data: dict[str, Any]) -> Path:
        """A project root holding contracts/<env>.json (and Pulumi.yaml, so TALY_PROJECT_ROOT accepts it)."""
        (root / "Pulumi.yaml").write_text("name: taly\n")
        (root / "contracts").mkdir(exist_ok=True)
        path = root / "contracts" / f"{data['environment']}.json"
        path.write_text(json.dumps(data))
        return path


@pytest.fixture(scope="session")
def make_contract() -> ContractFactory:
    return ContractFactory()


# --- emulators ------------------------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def moto_server(request) -> str:
    """moto_server through the estate's own launcher; its URL. Missing moto fails, never skips."""
    problems = aws_emulator.preflight()
    assert not problems, problems
    root = Path(tempfile.mkdtemp(prefix="taly-moto-"))
    port = supervisor.free_port()
    spawned = aws_emulator.spawn(port, root / "moto.log", root)

    def stop() -> None:
        supervisor.stop(spawned.pid, spawned.start_time, pgid=spawned.pgid, timeout=10)
        shutil.rmtree(root, ignore_errors=True)

    request.addfinalizer(stop)
    supervisor.wait_until(lambda: supervisor.port_open(port), component="moto", what="listening port", timeout=30,
                          log=root / "moto.log", pid=spawned.pid)
    return aws_emulator.endpoint(port)


@pytest.fixture
def kube():
    emulator = kube_emulator.KubeEmulator().start()
    yield emulator
    emulator.stop()


@pytest.fixture
def kube_unstarted():
    """An emulator whose port is bound but that never answers (for unreachable-API tests)."""
    return kube_emulator.KubeEmulator()
