"""The environment under check: its contract, where its systems answer, and how to authenticate.

`local` comes from the local estate's state file (endpoints with their passwords, the AWS emulator);
`dev|staging|prod` from the contract file `pulumi stack output --json` wrote, with passwords read
from Secrets Manager (the contract's secret ARNs) when a check needs them. Every secret that is
read is remembered, so that the runner can scrub it from anything printed.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from typing import Any, Callable

from taly_platform.contract import EnvironmentContract

# One boto3 session per process (its loaders cache the service models across --watch runs); a Session
# is not thread-safe, so clients are made under a lock. The clients themselves are thread-safe.
SECRET_KEY = re.compile(r"pass|token|secret|key", re.IGNORECASE)  # which fields of a secret are secret
_SESSION: Any = None
_SESSION_LOCK = threading.Lock()


def _session():
    global _SESSION
    if _SESSION is None:
        import boto3

        _SESSION = boto3.session.Session()
    return _SESSION


class CredentialsUnavailable(Exception):
    """A check's credentials (or the broker's address) could not be read: nothing was asked of the system."""


def guarded(what: str, fn: Callable[[], Any]) -> Any:
    try:
        return fn()
    except CredentialsUnavailable:
        raise
    except Exception as exc:  # noqa: BLE001 - botocore's errors, a malformed secret
        text = " ".join(str(exc).split()) or type(exc).__name__
        raise CredentialsUnavailable(f"cannot read {what}: {type(exc).__name__}: {text}"[:300]) from None


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"

    @classmethod
    def parse(cls, text: str, default_port: int) -> "Endpoint":
        """"host", "host:port" (a replica's endpoint may carry its own port)."""
        host, sep, port = text.rpartition(":")
        if sep and port.isdigit() and host and not host.endswith(":"):
            return cls(host.strip("[]"), int(port))
        return cls(text, default_port)


@dataclass
class PgAccess:
    primary_id: str
    primary: Endpoint
    replicas: list[tuple[str, Endpoint]]
    database: str
    sslmode: str
    credentials: Callable[[], tuple[str, str]]  # (user, password), read when first needed

    def conninfo(self, ep: Endpoint, timeout: float) -> str:
        import psycopg.conninfo

        user, password = guarded("the database credentials", self.credentials)
        return psycopg.conninfo.make_conninfo(
            host=ep.host, port=ep.port, dbname=self.database, user=user, password=password, sslmode=self.sslmode,
            connect_timeout=max(2, int(timeout) - 1), application_name="taly-health",
            options=f"-c statement_timeout={int(max(timeout - 0.5, 0.5) * 1000)}")


@dataclass
class RedisAccess:
    primary: Endpoint
    replicas: list[Endpoint]
    tls: bool
    password: Callable[[], str | None]


@dataclass
class RabbitAccess:
    management_url: Callable[[], str]  # base URL, ending in /
    credentials: Callable[[], tuple[str, str]]
    work_queues: list[str]
    dead_letter_suffix: str = ".dlq"


@dataclass
class Target:
    environment: str
    contract: EnvironmentContract
    source: str                                   # the state or contract file it came from
    local_endpoints: dict[str, Any] | None = None  # the local estate's endpoints (with passwords)
    stack_loader: Callable[[], Any] | None = None  # the stack's StackConfig, or None when not available
    secrets: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _cache: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def local(self) -> bool:
        return self.local_endpoints is not None

    @property
    def has_cluster(self) -> bool:
        """A Kubernetes cluster to look at: every cloud environment; the local estate has none."""
        return not self.local

    def remember(self, *values: Any) -> None:
        with self._lock:
            self.secrets.update(str(v) for v in values if v and len(str(v)) >= 4)

    def once(self, key: str, make: Callable[[], Any]) -> Any:
        """A value computed once per run (under a per-key lock: concurrent checks wait for the first).

        A failure is remembered too, so that checks sharing a secret that cannot be read fail at once
        instead of each trying again.
        """
        with self._lock:
            key_lock = self._cache.setdefault(f"lock:{key}", threading.Lock())
        with key_lock:
            if key not in self._cache:
                try:
                    self._cache[key] = (True, make())
                except Exception as exc:  # noqa: BLE001 - re-raised to every caller
                    self._cache[key] = (False, exc)
            ok, value = self._cache[key]
        if not ok:
            raise value
        return value

    # --- AWS ------------------------------------------------------------------------------------

    @property
    def region(self) -> str:
        return (self.local_endpoints or {}).get("aws", {}).get("region") or self.contract.region

    def aws_client(self, service: str, timeout: float = 5.0):
        """A botocore client (thread-safe once made): the emulator locally, the default credentials otherwise."""
        def make():
            from botocore.config import Config

            io = max(timeout - 0.5, 0.5)  # its own error before the probe's deadline
            config = Config(connect_timeout=min(io, 3), read_timeout=io,
                            retries={"mode": "standard", "total_max_attempts": 1},
                            s3={"addressing_style": "path"} if self.local else None)
            kwargs: dict[str, Any] = {"region_name": self.region, "config": config}
            if self.local:
                aws = self.local_endpoints["aws"]
                kwargs |= {"endpoint_url": aws["endpoint_url"], "aws_access_key_id": aws["access_key_id"],
                           "aws_secret_access_key": aws["secret_access_key"]}
            with _SESSION_LOCK:
                return _session().client(service, **kwargs)

        return self.once(f"client:{service}", make)

    def secret(self, arn: str) -> dict[str, Any]:
        """A Secrets Manager secret's JSON (remembered for scrubbing)."""
        def make():
            value = self.aws_client("secretsmanager").get_secret_value(SecretId=arn)["SecretString"]
            data = json.loads(value)
            self.remember(value, *[v for k, v in data.items() if isinstance(v, str) and SECRET_KEY.search(k)])
            return data

        return self.once(f"secret:{arn}", make)

    # --- the data plane ---------------------------------------------------------------------------

    def postgres(self) -> PgAccess:
        db = self.contract.database
        replicas = [(rid, Endpoint.parse(ep, db.port)) for rid, ep in zip(db.replica_ids, db.replica_endpoints)]

        def credentials() -> tuple[str, str]:
            if self.local:
                primary = self.local_endpoints["postgres"]["primary"]
                return primary["user"], primary["password"]
            data = self.secret(db.master_secret_arn)
            return data["username"], data["password"]

        return PgAccess(db.primary_id, Endpoint(db.primary_endpoint, db.port), replicas, db.database,
                        "prefer" if self.local else "require", credentials)

    def redis(self) -> RedisAccess:
        cache = self.contract.cache
        replicas = [Endpoint.parse(cache.reader_endpoint, cache.port)] if cache.reader_endpoint else []

        def password() -> str | None:
            if self.local:
                return self.local_endpoints["redis"].get("password")
            return self.secret(cache.auth_secret_arn).get("password")

        return RedisAccess(Endpoint(cache.primary_endpoint, cache.port), replicas, tls=not self.local, password=password)

    def rabbitmq(self) -> RabbitAccess:
        broker = self.contract.broker

        def url() -> str:
            if self.local:
                return self.local_endpoints["rabbitmq"]["management_url"]

            def console() -> str:
                described = self.aws_client("mq").describe_broker(BrokerId=broker.broker_id)
                instances = described.get("BrokerInstances") or []
                if not instances or not instances[0].get("ConsoleURL"):
                    raise RuntimeError(f"broker {broker.broker_id} lists no console URL")
                return instances[0]["ConsoleURL"].rstrip("/") + "/"

            return self.once("mq-console", console)

        def credentials() -> tuple[str, str]:
            if self.local:
                r = self.local_endpoints["rabbitmq"]
                return r["user"], r["password"]
            data = self.secret(broker.credentials_secret_arn)
            return data["username"], data["password"]

        if self.local:
            queues = list(self.local_endpoints["rabbitmq"].get("queues") or [])
        else:
            from taly_platform.catalog import CATALOG

            queues = [f"taly.{s.name}" for s in CATALOG if s.broker]
        return RabbitAccess(url, credentials, queues)

    def prometheus(self) -> tuple[str, Any]:
        """(base URL, requests auth or None): the local Prometheus, or the workspace with SigV4."""
        if self.local:
            return self.local_endpoints["prometheus"]["url"].rstrip("/"), None
        return self.contract.prometheus_endpoint.rstrip("/"), SigV4Auth(self.region, "aps")

    # --- expectations from the stack file ------------------------------------------------------------

    def stack(self):
        """The environment's StackConfig (None locally, or when the stack file cannot be read)."""
        if self.stack_loader is None:
            return None
        return self.once("stack", self.stack_loader)


class SigV4Auth:
    """requests auth that signs with the default AWS credentials (Amazon Managed Prometheus)."""

    def __init__(self, region: str, service: str) -> None:
        self.region, self.service = region, service

    def __call__(self, request):
        from botocore.auth import SigV4Auth as Signer
        from botocore.awsrequest import AWSRequest

        with _SESSION_LOCK:
            credentials = _session().get_credentials()
        if credentials is None:
            raise RuntimeError("no AWS credentials to sign the Prometheus query with")
        aws = AWSRequest(method=request.method, url=request.url, data=request.body,
                         headers={k: v for k, v in request.headers.items() if k.lower() in ("host", "content-type")})
        Signer(credentials.get_frozen_credentials(), self.service, self.region).add_auth(aws)
        request.headers.update(dict(aws.headers.items()))
        return request
