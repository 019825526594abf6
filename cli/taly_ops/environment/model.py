"""The Environment: a resolved environment's contract, typed endpoints and lazily built adapters."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, TypeVar

from ..adapters.aws import Aws, AwsTarget
from ..adapters.secrets import SecretsReader, SecretUnreadable
from ..errors import Unreachable
from .endpoints import (HostPort, LocalEstate, Login, PostgresTopology, RecoveryTargets, RedisTopology,
                        addresses)

if TYPE_CHECKING:
    from taly_platform.config import StackConfig
    from taly_platform.contract import EnvironmentContract

    from ..adapters.kube import Kube
    from ..adapters.postgres import Endpoint as PgEndpoint
    from ..adapters.prometheus import Prometheus
    from ..adapters.s3_store import Store

T = TypeVar("T")

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
        from ..adapters.s3_store import Store

        return self.once("store", lambda: Store(bucket=self.contract.buckets.backups, aws=self.aws))

    def kube(self) -> "Kube":
        """The cluster's kubeconfig context (the contract's); KubeconfigProblem on first use when there is none.

        The local estate's is in its own kubeconfig (`<state>/kubeconfig`), not $KUBECONFIG's.
        """
        from ..adapters.kube import Kube

        cluster = self.contract.cluster
        if self.local:
            hint = "the local estate writes it; restart it with `taly local down && taly local up`"
            return self.once("kube", lambda: Kube(cluster.kube_context, hint, kubeconfig=self.local.kubeconfig))
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
        from ..adapters.prometheus import Prometheus

        if self.local:
            return Prometheus(self.local.prometheus_url.rstrip("/"))
        from ..adapters.aws import SigV4Auth

        return Prometheus(self.contract.prometheus_endpoint.rstrip("/"), SigV4Auth(self.aws, "aps"))

    # --- the database, for backups and drills -----------------------------------------------------------

    def _pg_endpoint(self, role: str) -> "PgEndpoint | None":
        from ..adapters.postgres import Endpoint

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
