"""Redis through redis-py: PING and INFO on one server, on a short single connection.

Connect and read timeouts under the caller's deadline and no retries, so a stopped (or frozen) server
fails in time instead of hanging. redis is imported on first use.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

REQUIRES = ("redis", "redis.backoff", "redis.retry")  # what a caller may import ahead of its deadlines


@dataclass(frozen=True)
class RedisServer:
    host: str
    port: int
    password: str | None = None
    tls: bool = False

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


def _connect(server: RedisServer, timeout: float):
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    io = max(timeout - 0.5, 0.5)
    return redis.Redis(host=server.host, port=server.port, password=server.password, ssl=server.tls,
                       socket_connect_timeout=io, socket_timeout=io, retry=Retry(NoBackoff(), 0),
                       single_connection_client=True, decode_responses=True)


def ping(server: RedisServer, timeout: float = 2.0) -> bool:
    with _connect(server, timeout) as r:
        return bool(r.ping())


def info(server: RedisServer, section: str, timeout: float = 2.0) -> dict[str, Any]:
    """INFO <section> as a dict (numbers as numbers, as redis-py parses them)."""
    with _connect(server, timeout) as r:
        return dict(r.info(section))
