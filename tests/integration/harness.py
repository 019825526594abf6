"""The classes and functions behind the integration conftest's fixtures (tests use the fixtures, not this module)."""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from typer.testing import CliRunner

import hooked_taly
from taly_ops.app import app
from taly_ops.local import aws_emulator, postgres, supervisor
from taly_ops.local.context import REGION
from taly_ops.local.state import State

REPO = Path(__file__).resolve().parents[2]


def wait_for_scratch(proc, registry: Callable[[], dict], timeout: float) -> dict:
    """The registry entry of proc's scratch instance, once it is spawned and accepting connections.

    Fails if proc exits first or the instance is not up within timeout seconds.
    """
    deadline = time.monotonic() + timeout
    while True:
        assert proc.poll() is None, proc.communicate() if proc.stdout else proc.returncode
        assert time.monotonic() < deadline, "the scratch instance never came up"
        mine = [e for e in registry().values() if e.get("owner_pid") == proc.pid]
        if mine and mine[0].get("pid") and supervisor.port_open(mine[0]["port"]):
            return mine[0]
        time.sleep(0.05)


def drill_processes(drill_id: str) -> list[int]:
    """Pids of live processes whose command line mentions the drill (its postgres runs from a dir named after it)."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cmd = Path(f"/proc/{entry}/cmdline").read_bytes()
            except OSError:
                continue
            if drill_id.encode() in cmd and supervisor.alive(int(entry)):
                pids.append(int(entry))
    return pids


class EstateDb:
    """The estate's PostgreSQL servers."""

    @staticmethod
    def conninfo(state: State, role: str = "primary", dbname: str = "taly") -> str:
        e = state.endpoints["postgres"][role]
        return postgres.conninfo(e["host"], e["port"], e["password"], dbname=dbname)

    def wait_replica(self, state: State, timeout: float = 20) -> None:
        """Until the replica has replayed every write the primary has made so far (backups read the replica)."""
        lsn = postgres._query(self.conninfo(state), "SELECT pg_current_wal_insert_lsn()")[0][0]
        deadline = time.monotonic() + timeout
        while not postgres._query(self.conninfo(state, "replica"), f"SELECT pg_last_wal_replay_lsn() >= '{lsn}'")[0][0]:
            assert time.monotonic() < deadline, f"the replica never replayed the primary's writes up to {lsn}"
            time.sleep(0.05)


class Taly:
    """The taly CLI in-process, with `tail` appended to every command line and `env` set."""

    def __init__(self, *tail: Any, env: dict[str, str] | None = None) -> None:
        self.tail = [str(a) for a in tail]
        self.env = dict(env or {})

    def __call__(self, *args: Any, env: dict[str, str] | None = None):
        return CliRunner().invoke(app, [*(str(a) for a in args), *self.tail], env={**self.env, **(env or {})})

    def with_args(self, *tail: Any, env: dict[str, str] | None = None) -> Taly:
        return Taly(*self.tail, *tail, env={**self.env, **(env or {})})

    def local(self, state: State) -> Taly:
        """Every command against the local estate in state (`--env local --state-dir ...`)."""
        return self.with_args("--env", "local", "--state-dir", state.state_dir)

    @staticmethod
    def json(result) -> Any:
        assert result.stdout.strip(), result.stderr
        return json.loads(result.stdout)

    @staticmethod
    def held(step: str, seconds: float, *args: Any) -> list[str]:
        """The argv that runs `taly *args` in a subprocess, holding `seconds` at the named step."""
        return hooked_taly.command(step, seconds, *(str(a) for a in args))

    @staticmethod
    def audit(state_dir: Path) -> list[dict]:
        """The audit log taly keeps in an environment's state dir (none yet: [])."""
        try:
            return [json.loads(line) for line in (Path(state_dir) / "audit.log").read_text().splitlines()]
        except FileNotFoundError:
            return []

    @staticmethod
    def drill_registry(state_dir: Path) -> dict:
        """The scratch instances registered in an environment's state dir (drills/registry.json), by id."""
        try:
            return json.loads((Path(state_dir) / "drills" / "registry.json").read_text())["drills"]
        except (FileNotFoundError, ValueError):
            return {}


class Backups:
    """The local estate's backups bucket, for tests that make, damage and remove backups."""

    @staticmethod
    def s3(state: State):
        return aws_emulator.client("s3", state.endpoints["aws"]["endpoint_url"])

    @staticmethod
    def bucket(state: State) -> str:
        return state.contract["buckets"]["backups"]

    def create(self, state: State) -> dict:
        """`taly backup create` on the estate; its manifest."""
        result = Taly().local(state)("backup", "create", "-o", "json")
        assert result.exit_code == 0, result.stderr
        return Taly.json(result)

    def _rewrite(self, state: State, key: str, change: Callable[[bytes], bytes]) -> None:
        s3, bucket = self.s3(state), self.bucket(state)
        s3.put_object(Bucket=bucket, Key=key, Body=change(s3.get_object(Bucket=bucket, Key=key)["Body"].read()))

    def flip_byte(self, state: State, key: str) -> None:
        """One bit of the object's middle byte flipped."""
        def flip(body: bytes) -> bytes:
            changed = bytearray(body)
            changed[len(changed) // 2] ^= 0x01
            return bytes(changed)

        self._rewrite(state, key, flip)

    def truncate(self, state: State, key: str) -> None:
        """The object cut to its first third."""
        self._rewrite(state, key, lambda body: body[: len(body) // 3])

    def remove(self, state: State, backup_id: str) -> None:
        """Every version of every object of the backup: a damaged backup leaves the shared bucket with its test."""
        s3, bucket = self.s3(state), self.bucket(state)
        for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=f"backups/{backup_id}/"):
            for v in page.get("Versions", []) + page.get("DeleteMarkers", []):
                s3.delete_object(Bucket=bucket, Key=v["Key"], VersionId=v["VersionId"])


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


@dataclass
class Project:
    """A project root with contracts/ and runbooks/, and the environment that points taly at it."""

    root: Path
    env: dict[str, str] = field(default_factory=dict)

    @property
    def state(self) -> Path:
        return self.root / "state"


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

    def project(self, root: Path, *contracts: dict[str, Any], aws_endpoint: str | None = None) -> Project:
        """contracts and the repo's runbooks (the drill spec, the anonymisation rules) in root; the environment
        that runs taly there: its state in root/state, and with aws_endpoint, boto3's standard chain at the
        emulator (its keys, the local region, no config or credentials file of the machine's)."""
        (root / "Pulumi.yaml").write_text("name: taly\n")
        (root / "contracts").mkdir(exist_ok=True)
        shutil.copytree(REPO / "runbooks", root / "runbooks", dirs_exist_ok=True)
        for data in contracts:
            self.write(root, data)
        env = {"TALY_PROJECT_ROOT": str(root), "TALY_STATE_DIR": str(root / "state")}
        if aws_endpoint:
            env |= {"AWS_ENDPOINT_URL": aws_endpoint, "AWS_ACCESS_KEY_ID": aws_emulator.ACCESS_KEY,
                    "AWS_SECRET_ACCESS_KEY": aws_emulator.SECRET_KEY, "AWS_DEFAULT_REGION": REGION,
                    "AWS_CONFIG_FILE": str(root / "no-aws-config"),
                    "AWS_SHARED_CREDENTIALS_FILE": str(root / "no-aws-credentials")}
        return Project(root, env)


@dataclass
class PostgresServer:
    port: int
    password: str

    def conninfo(self, dbname: str = "postgres") -> str:
        return postgres.conninfo("127.0.0.1", self.port, self.password, dbname=dbname)


class Kubectl:
    """kubectl(state, *args, check=True): the real kubectl against an estate's cluster, as a person runs it."""

    def __call__(self, state: State, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        from taly_ops.local import kube

        env = {**os.environ, "KUBECONFIG": str(kube.kubeconfig_path(state.state_dir))}
        done = subprocess.run([self.binary(), "--context", kube.CONTEXT, *args], capture_output=True, text=True,
                              env=env, timeout=90)
        if check:
            assert done.returncode == 0, f"kubectl {' '.join(args)}: {done.stdout}{done.stderr}"
        return done

    @staticmethod
    def binary() -> str:
        found = shutil.which("kubectl") or str(Path(__file__).resolve().parents[2] / ".tools" / "bin" / "kubectl")
        assert os.access(found, os.X_OK), "kubectl is missing: scripts/install-helm puts it into .tools/bin"
        return found
