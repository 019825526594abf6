"""Redis: PING on the primary and each replica, the replica's role, link and offset lag, memory against
maxmemory, evicted keys and rejected connections.

redis-py with connect and read timeouts and no retries, so a stopped (or frozen) server fails within
the probe's timeout instead of hanging.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Callable

from ..adapters import redis as redis_adapter
from ..environment import Environment, HostPort as Endpoint
from .model import CredentialsUnavailable, Probe, Recorder, guarded
from .thresholds import MiB, Thresholds

C = "redis"
REQUIRES = redis_adapter.REQUIRES  # imported by the operation before the clocks start


@dataclass
class RedisAccess:
    primary: Endpoint
    replicas: tuple[Endpoint, ...]
    tls: bool
    password: Callable[[], str | None]

    @classmethod
    def of(cls, env: Environment) -> "RedisAccess":
        topo = env.redis()
        return cls(topo.primary, topo.replicas, topo.tls, env.redis_password)


def probes(env: Environment, th: Thresholds) -> list[Probe]:
    access = RedisAccess.of(env)
    t = th.timeouts.redis
    out = [Probe(C, f"primary {access.primary}: ping", partial(ping, access, access.primary, "primary", t),
                 liveness=True, timeout=t)]
    for ep in access.replicas:
        out.append(Probe(C, f"replica {ep}: ping", partial(ping, access, ep, "replica", t), liveness=True, timeout=t))
    for ep in access.replicas:
        out.append(Probe(C, f"replica {ep}: replication", partial(replication, access, ep, th, t), timeout=t))
    out += [
        Probe(C, "memory", partial(memory, access, th, t), timeout=t),
        Probe(C, "evictions and rejections", partial(stats, access, th, t), timeout=t),
    ]
    return out


def _server(access: RedisAccess, ep: Endpoint) -> redis_adapter.RedisServer:
    password = guarded("the cache's auth token", access.password)
    return redis_adapter.RedisServer(ep.host, ep.port, password, access.tls)


def _error(exc: BaseException) -> str:
    return (" ".join(str(exc).split()) or type(exc).__name__)[:300]


def ping(access: RedisAccess, ep: Endpoint, role: str, timeout: float):
    rec = Recorder(C)
    name = f"{role} {ep}: ping"
    try:
        pong = redis_adapter.ping(_server(access, ep), timeout)
    except CredentialsUnavailable as exc:
        rec.add(name, "unknown", "no credentials", None, str(exc))
        return rec.results
    except Exception as exc:  # noqa: BLE001 - no answer is the verdict
        rec.add(name, "fail", "no answer", None, f"PING {ep}: {type(exc).__name__}: {_error(exc)}")
        return rec.results
    rec.add(name, "ok" if pong else "fail", "PONG" if pong else repr(pong), None, f"PING {ep}")
    return rec.results


def replication(access: RedisAccess, ep: Endpoint, th: Thresholds, timeout: float):
    rec = Recorder(C)
    name = f"replica {ep}: replication"
    lim = th.redis.replica_lag_bytes
    info = redis_adapter.info(_server(access, ep), "replication", timeout)
    role, link = info.get("role"), info.get("master_link_status")
    if role != "slave":
        rec.add(name, "fail", f"role {role}", "role slave, link up", f"INFO replication on {ep}: role={role}")
        return rec.results
    if link != "up":
        rec.add(name, "fail", f"link {link}", "role slave, link up",
                f"INFO replication on {ep}: master_link_status={link}, "
                f"master_link_down_since_seconds={info.get('master_link_down_since_seconds')}")
        return rec.results
    replica_offset = int(info.get("slave_repl_offset") or 0)
    try:
        primary_offset = int(redis_adapter.info(_server(access, access.primary), "replication", timeout)
                             .get("master_repl_offset") or 0)
    except Exception as exc:  # noqa: BLE001 - the link is up; the lag cannot be measured
        rec.add(name, "unknown", "link up", lim.describe(" MiB", MiB),
                f"INFO replication on {ep}: master_link_status=up; primary {access.primary}: {_error(exc)}")
        return rec.results
    lag = max(primary_offset - replica_offset, 0)
    rec.add(name, lim.grade(lag), f"link up, {lag} B behind", lim.describe(" MiB", MiB),
            f"INFO replication: primary master_repl_offset={primary_offset}, replica slave_repl_offset={replica_offset}")
    return rec.results


def memory(access: RedisAccess, th: Thresholds, timeout: float):
    rec = Recorder(C)
    lim = th.redis.memory_percent
    info = redis_adapter.info(_server(access, access.primary), "memory", timeout)
    used, maximum = int(info.get("used_memory") or 0), int(info.get("maxmemory") or 0)
    if maximum == 0:
        rec.add("memory", "ok", f"{used / MiB:.1f} MiB", lim.describe(" %"),
                f"INFO memory on {access.primary}: used_memory={used}, no maxmemory (maxmemory=0)")
        return rec.results
    pct = 100.0 * used / maximum
    rec.add("memory", lim.grade(pct), f"{pct:.0f} % ({used / MiB:.1f}/{maximum / MiB:.0f} MiB)", lim.describe(" %"),
            f"INFO memory on {access.primary}: used_memory={used}, maxmemory={maximum}, "
            f"policy {info.get('maxmemory_policy')}")
    return rec.results


def stats(access: RedisAccess, th: Thresholds, timeout: float):
    rec = Recorder(C)
    info = redis_adapter.info(_server(access, access.primary), "stats", timeout)
    for key, lim, label in (("evicted_keys", th.redis.evicted_keys, "evicted keys"),
                            ("rejected_connections", th.redis.rejected_connections, "rejected connections")):
        value = int(info.get(key) or 0)
        rec.add(label, lim.grade(value), str(value), lim.describe(),
                f"INFO stats on {access.primary}: {key}={value} (since the server started)")
    return rec.results
