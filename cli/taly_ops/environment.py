"""The environments `taly` works on, and the one way to resolve a name into one.

`local` is the local estate (its state file: endpoints with their passwords, the AWS emulator);
`dev`, `staging` and `prod` are `contracts/<env>.json` (what `pulumi stack output --json` wrote),
with credentials read from Secrets Manager through the contract's secret ARNs when first needed.
Every command that acts on an environment (health, backup, drill, refresh) calls `resolve`; the
names, the "unknown environment" error and the "no local estate" error exist only here.

An `Environment` holds typed endpoints and builds its adapters (AWS clients, the Secrets Manager
reader, the backups bucket) lazily, once: resolving one costs no network call and no heavy import.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, TypedDict, TypeVar

from taly_platform.config import ENVIRONMENTS as CLOUD  # the Pulumi stacks: dev, staging, prod

from .adapters.aws import Aws, AwsTarget
from .adapters.secrets import SecretsReader, SecretUnreadable
from .errors import BadInput, Unreachable

if TYPE_CHECKING:
    from taly_platform.config import StackConfig
    from taly_platform.contract import EnvironmentContract

    from .adapters.kube import Kube
    from .adapters.prometheus import Prometheus
    from .adapters.postgres import Endpoint as PgEndpoint
    from .adapters.s3_store import Store

LOCAL = "local"
NAMES: tuple[str, ...] = (LOCAL, *CLOUD)
CONTRACTS_DIR = "contracts"
STATE_ENV_VAR = "TALY_STATE_DIR"  # where a cloud environment's audit log and drill registry live
T = TypeVar("T")


class UnknownEnvironment(BadInput):
    pass


class NoLocalEstate(BadInput):
    """No (running) local estate: configuration, exit 2, for every command."""


def check_name(name: str, flag: str | None = None) -> str:
    """name if it is an environment; else the one "unknown environment" error (exit 2)."""
    if name not in NAMES:
        where = f"{flag}: " if flag else ""
        raise UnknownEnvironment(f"{where}unknown environment '{name}'; known: {', '.join(NAMES)}")
    return name


def no_local_estate(state_dir: Path) -> NoLocalEstate:
    return NoLocalEstate(f"no local estate in {state_dir}: run `taly local up`",
                         hint="or pass the --state-dir (or set $TALY_LOCAL_STATE) of the estate you started")


def contract_command(env: str) -> str:
    return f"pulumi stack output --stack {env} --json > {CONTRACTS_DIR}/{env}.json"


# --- typed endpoints ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class HostPort:
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"

    @classmethod
    def parse(cls, text: str, default_port: int) -> "HostPort":
        """"host", "host:port" (a replica's endpoint may carry its own port), "[::1]:port"."""
        host, sep, port = text.rpartition(":")
        if sep and port.isdigit() and host and not host.endswith(":"):
            return cls(host.strip("[]"), int(port))
        return cls(text, default_port)


@dataclass(frozen=True)
class Login:
    user: str
    password: str


@dataclass(frozen=True)
class LocalEstate:
    """What the local estate's state file says about where its servers answer (passwords included)."""

    postgres: Login
    redis_password: str | None
    rabbitmq: Login
    rabbitmq_management_url: str
    rabbitmq_queues: tuple[str, ...]
    aws: AwsTarget
    prometheus_url: str

    @classmethod
    def from_endpoints(cls, e: dict, path: Path) -> "LocalEstate":
        try:
            pg, mq, aws = e["postgres"]["primary"], e["rabbitmq"], e["aws"]
            return cls(postgres=Login(pg["user"], pg["password"]), redis_password=e["redis"].get("password"),
                       rabbitmq=Login(mq["user"], mq["password"]), rabbitmq_management_url=mq["management_url"],
                       rabbitmq_queues=tuple(mq.get("queues") or ()),
                       aws=AwsTarget(aws["region"], aws["endpoint_url"], aws["access_key_id"], aws["secret_access_key"]),
                       prometheus_url=e["prometheus"]["url"])
        except (KeyError, TypeError) as exc:
            raise BadInput(f"the local estate's state file {path} lacks {exc}",
                           hint="restart it: `taly local down && taly local up`") from None

    def secrets(self) -> tuple[str, ...]:
        return tuple(s for s in (self.postgres.password, self.redis_password, self.rabbitmq.password) if s)


@dataclass(frozen=True)
class PostgresTopology:
    primary_id: str
    primary: HostPort
    replicas: tuple[tuple[str, HostPort], ...]
    database: str
    sslmode: str  # "require" for RDS (rds.force_ssl); the local servers accept TLS but do not insist


@dataclass(frozen=True)
class RedisTopology:
    primary: HostPort
    replicas: tuple[HostPort, ...]
    tls: bool


class RecoveryTargets(TypedDict):
    rpo_minutes: int
    rto_minutes: int
    source: str  # where the numbers come from


# --- the environment ----------------------------------------------------------------------------------

@dataclass
class Environment:
    name: str
    contract: "EnvironmentContract"
    origin: Path       # the state file or contract file it was read from
    state_dir: Path    # audit log, drill registry, scratch instances
    project_root: Path | None = None
    local: LocalEstate | None = None
    _cache: dict[str, tuple[bool, object]] = field(default_factory=dict, repr=False)
    _locks: dict[str, threading.Lock] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def is_local(self) -> bool:
        return self.local is not None

    @property
    def has_cluster(self) -> bool:
        """A Kubernetes cluster to look at: every cloud environment; the local estate has none."""
        return not self.is_local

    @property
    def region(self) -> str:
        return self.local.aws.region if self.local else self.contract.region

    def once(self, key: str, make: Callable[[], T]) -> T:
        """A value computed once (under a per-key lock: concurrent callers wait for the first).

        A failure is remembered too, so that callers sharing something that cannot be had fail at once.
        """
        with self._lock:
            key_lock = self._locks.setdefault(key, threading.Lock())
        with key_lock:
            if key not in self._cache:
                try:
                    self._cache[key] = (True, make())
                except Exception as exc:  # noqa: BLE001 - re-raised to every caller
                    self._cache[key] = (False, exc)
            ok, value = self._cache[key]
        if not ok:
            raise value  # type: ignore[misc]
        return value  # type: ignore[return-value]

    # --- adapters (built on first use) -----------------------------------------------------------------

    @property
    def aws(self) -> Aws:
        return self.once("aws", lambda: Aws(self.local.aws if self.local else AwsTarget(self.contract.region)))

    def aws_client(self, service: str, timeout: float | None = None):
        return self.aws.client(service, timeout)

    @property
    def secrets(self) -> SecretsReader:
        def make() -> SecretsReader:
            reader = SecretsReader(self.aws)
            if self.local:
                reader.remember(*self.local.secrets())
            return reader

        return self.once("secrets", make)

    def revealed(self) -> set[str]:
        """Every secret value this environment has handed out: what output must never show."""
        return set(self.secrets.revealed)

    @property
    def store(self) -> "Store":
        from .adapters.s3_store import Store

        return self.once("store", lambda: Store(bucket=self.contract.buckets.backups, aws=self.aws))

    def kube(self) -> "Kube":
        """The cluster's kubeconfig context (the contract's); KubeconfigProblem on first use when there is none."""
        from .adapters.kube import Kube

        cluster = self.contract.cluster
        hint = f"create it with `aws eks update-kubeconfig --name {cluster.name} --alias {cluster.kube_context}`"
        return self.once("kube", lambda: Kube(cluster.kube_context, hint))

    def stack(self) -> "StackConfig | None":
        """The environment's StackConfig (None locally, or when the stack file cannot be read)."""
        if self.is_local or self.project_root is None:
            return None

        def load():
            from taly_platform.stackfile import StackConfigError, load_stack

            try:
                return load_stack(self.project_root, self.name)
            except StackConfigError:
                return None

        return self.once("stack", load)

    # --- credentials ---------------------------------------------------------------------------------

    def _secret_login(self, arn: str) -> Login:
        data = self.secrets.json(arn, needs=("username", "password"))
        return Login(data["username"], data["password"])

    def database_login(self) -> Login:
        """SecretUnreadable when the cloud secret cannot be read."""
        if self.local:
            return self.local.postgres
        return self._secret_login(self.contract.database.master_secret_arn)

    def redis_password(self) -> str | None:
        if self.local:
            return self.local.redis_password
        return self.secrets.json(self.contract.cache.auth_secret_arn).get("password")

    def rabbitmq_login(self) -> Login:
        if self.local:
            return self.local.rabbitmq
        return self._secret_login(self.contract.broker.credentials_secret_arn)

    # --- where each system answers -------------------------------------------------------------------

    def postgres(self) -> PostgresTopology:
        db = self.contract.database
        replicas = tuple((rid, HostPort.parse(ep, db.port)) for rid, ep in zip(db.replica_ids, db.replica_endpoints))
        return PostgresTopology(db.primary_id, HostPort(db.primary_endpoint, db.port), replicas, db.database,
                                "prefer" if self.is_local else "require")

    def redis(self) -> RedisTopology:
        cache = self.contract.cache
        replicas = (HostPort.parse(cache.reader_endpoint, cache.port),) if cache.reader_endpoint else ()
        return RedisTopology(HostPort(cache.primary_endpoint, cache.port), replicas, tls=not self.is_local)

    def rabbitmq_management_url(self) -> str:
        """The management API's base URL (ending in /): the local node's, or the Amazon MQ console's."""
        if self.local:
            return self.local.rabbitmq_management_url
        broker = self.contract.broker

        def console() -> str:
            described = self.aws_client("mq").describe_broker(BrokerId=broker.broker_id)
            instances = described.get("BrokerInstances") or []
            if not instances or not instances[0].get("ConsoleURL"):
                raise RuntimeError(f"broker {broker.broker_id} lists no console URL")
            return instances[0]["ConsoleURL"].rstrip("/") + "/"

        return self.once("mq-console", console)

    def work_queues(self) -> list[str]:
        if self.local:
            return list(self.local.rabbitmq_queues)
        from taly_platform.catalog import CATALOG

        return [f"taly.{s.name}" for s in CATALOG if s.broker]

    def prometheus(self) -> "Prometheus":
        """The local Prometheus, or the contract's AMP workspace (queried with SigV4)."""
        from .adapters.prometheus import Prometheus

        if self.local:
            return Prometheus(self.local.prometheus_url.rstrip("/"))
        from .adapters.aws import SigV4Auth

        return Prometheus(self.contract.prometheus_endpoint.rstrip("/"), SigV4Auth(self.aws, "aps"))

    # --- the database, for backups and drills -----------------------------------------------------------

    def _pg_endpoint(self, role: str) -> "PgEndpoint | None":
        from .adapters.postgres import Endpoint

        topo = self.postgres()
        if role == "primary":
            where = topo.primary
        elif topo.replicas:
            where = topo.replicas[0][1]
        else:
            return None
        try:
            login = self.database_login()
        except SecretUnreadable as exc:
            raise Unreachable(f"cannot read the {self.name} database credentials from Secrets Manager "
                              f"({self.contract.database.master_secret_arn}): {exc}"[:400],
                              hint="are AWS credentials for this account set (AWS_PROFILE, AWS_REGION)?") from None
        return Endpoint(where.host, where.port, login.user, login.password, topo.database, role, topo.sslmode)

    @property
    def primary(self) -> "PgEndpoint":
        return self.once("pg:primary", lambda: self._pg_endpoint("primary"))

    @property
    def replica(self) -> "PgEndpoint | None":
        return self.once("pg:replica", lambda: self._pg_endpoint("replica"))

    @property
    def source(self) -> "PgEndpoint":
        """What backups read from: the replica, the primary only when there is none."""
        return self.replica or self.primary

    def source_addresses(self) -> set[tuple[str, int]]:
        """Every (host, port) this environment's database answers on (no credentials needed)."""
        topo = self.postgres()
        return {a for ep in (topo.primary, *(r for _, r in topo.replicas)) for a in addresses(ep.host, ep.port)}

    @property
    def targets(self) -> RecoveryTargets:
        """RPO and RTO: the contract's (the stack's BackupConfig); the local estate's are BackupConfig's defaults."""
        backup = self.contract.backup
        source = ("BackupConfig defaults (the local environment has no stack config)" if self.is_local
                  else f"the {self.name} contract (stack config taly:backup)")
        return RecoveryTargets(rpo_minutes=backup.rpo_minutes, rto_minutes=backup.rto_minutes, source=source)


def addresses(host: str, port: int) -> set[tuple[str, int]]:
    """Every (host, port) an endpoint answers on: its name and the addresses it resolves to (loopback as one)."""
    import socket

    names = {host}
    try:
        names |= {info[4][0] for info in socket.getaddrinfo(host, None)}
    except OSError:
        pass
    if names & {"127.0.0.1", "::1", "localhost"}:
        names |= {"127.0.0.1", "::1", "localhost"}
    return {(h, int(port)) for h in names}


# --- resolving ------------------------------------------------------------------------------------------

def resolve(name: str, state_dir: Path | None = None, *, root: Path | None = None) -> Environment:
    """The environment called `name`; BadInput (exit 2) for an unknown name, a missing or invalid contract,
    or no running local estate. Nothing is contacted."""
    check_name(name)
    if name == LOCAL:
        return _local(state_dir, root)
    if root is None:
        from .project import project_root

        root = project_root()
    path = root / CONTRACTS_DIR / f"{name}.json"
    return Environment(name, read_contract(name, path), path, cloud_state_dir(name, state_dir), project_root=root)


def read_contract(name: str, path: Path) -> "EnvironmentContract":
    import json

    from pydantic import ValidationError
    from taly_platform.contract import EnvironmentContract

    if not path.is_file():
        raise BadInput(f"no contract for {name}: {path} is missing; write it with `{contract_command(name)}`",
                       hint="the contract is what the Pulumi program exports: endpoints, ids and ARNs, no secret")
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise BadInput(f"{path}: not a JSON contract ({exc})", hint=f"rewrite it with `{contract_command(name)}`") from None
    try:
        contract = EnvironmentContract.model_validate(data)
    except ValidationError as exc:
        raise BadInput(f"{path}: not a valid environment contract: {first_error(exc)}",
                       hint=f"rewrite it with `{contract_command(name)}`") from None
    if contract.environment != name:
        raise BadInput(f"{path} is the contract of '{contract.environment}', not '{name}'")
    return contract


def first_error(exc) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"]) or "(top)"
    return f"{where}: {err['msg']}"


def _local(state_dir: Path | None, root: Path | None) -> Environment:
    from pydantic import ValidationError
    from taly_platform.contract import EnvironmentContract

    from .local.state import load, resolve_state_dir

    directory = resolve_state_dir(state_dir)
    state = load(directory) if directory.is_dir() else None
    if state is None:
        raise no_local_estate(directory)
    if state.phase != "running" or not state.contract:
        raise NoLocalEstate(f"the local estate in {directory} is not running (phase {state.phase!r})",
                            hint="wait for `taly local up` to finish, or run it again")
    try:
        contract = EnvironmentContract.model_validate(state.contract)
    except ValidationError as exc:
        raise BadInput(f"the local estate's contract in {state.path} is not valid: {first_error(exc)}",
                       hint="restart it: `taly local down && taly local up`") from None
    return Environment(LOCAL, contract, state.path, directory, project_root=root,
                       local=LocalEstate.from_endpoints(state.endpoints, state.path))


def cloud_state_dir(env: str, option: Path | None = None) -> Path:
    """Where a cloud environment's audit log and drill registry live on this machine.

    --state-dir, else $TALY_STATE_DIR/<env>, else .taly/<env> under the project root.
    """
    from .project import project_root

    if option is not None:
        path = option
    elif base := os.environ.get(STATE_ENV_VAR):
        path = Path(base) / env
    else:
        path = project_root() / ".taly" / env
    path = path.expanduser().absolute()
    if path.exists() and not path.is_dir():
        raise BadInput(f"state directory {path} exists and is not a directory")
    return path


def contract_addresses(env: str) -> set[tuple[str, int]] | None:
    """Every (host, port) the database of `env` answers on, from contracts/<env>.json alone (no credentials).

    None when there is no contract for it; a contract that exists but cannot be read is BadInput, for
    a safety net must not switch itself off. A safety net for commands that write to one environment:
    a contract copied from another (say staging's file still pointing at prod) must not lead there.
    """
    from .project import project_root

    root = project_root()
    path = root / CONTRACTS_DIR / f"{env}.json"
    if not path.exists():
        return None
    try:
        contract = read_contract(env, path)
    except BadInput as exc:
        raise BadInput(f"cannot check against {env}'s endpoints: {exc.message}", hint=exc.hint) from None
    return Environment(env, contract, path, root, project_root=root).source_addresses()
