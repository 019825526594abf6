"""Typed endpoints: where an environment's systems answer, and with which login."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TypedDict

from ..adapters.aws import AwsTarget
from ..errors import BadInput

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
    kubeconfig: Path  # the local cluster's (`<state>/kubeconfig`), with the context the contract names

    @classmethod
    def from_endpoints(cls, e: dict, path: Path) -> "LocalEstate":
        try:
            pg, mq, aws = e["postgres"]["primary"], e["rabbitmq"], e["aws"]
            return cls(postgres=Login(pg["user"], pg["password"]), redis_password=e["redis"].get("password"),
                       rabbitmq=Login(mq["user"], mq["password"]), rabbitmq_management_url=mq["management_url"],
                       rabbitmq_queues=tuple(mq.get("queues") or ()),
                       aws=AwsTarget(aws["region"], aws["endpoint_url"], aws["access_key_id"], aws["secret_access_key"]),
                       prometheus_url=e["prometheus"]["url"], kubeconfig=path.parent / "kubeconfig")
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
