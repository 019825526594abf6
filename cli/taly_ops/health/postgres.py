"""PostgreSQL: the primary and each replica accept connections, the primary is not in recovery, each
replica streams within the lag threshold, and the primary's connections, oldest transaction and
transaction-id wraparound headroom are within theirs.

Every probe opens its own short connection (psycopg, a small connect_timeout and a statement_timeout).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Callable

from ..adapters import postgres as pg_adapter
from ..environment import Environment, HostPort as Endpoint, Login
from .model import CredentialsUnavailable, Probe, Recorder, guarded
from .thresholds import Thresholds

C = "postgres"
REQUIRES = ("psycopg", "psycopg.conninfo")  # imported by the operation before the clocks start
XID_HORIZON = 2 ** 31


@dataclass
class PgAccess:
    primary_id: str
    primary: Endpoint
    replicas: tuple[tuple[str, Endpoint], ...]
    database: str
    sslmode: str
    login: Callable[[], Login]  # read when first needed

    @classmethod
    def of(cls, env: Environment) -> "PgAccess":
        topo = env.postgres()
        return cls(topo.primary_id, topo.primary, topo.replicas, topo.database, topo.sslmode, env.database_login)

    def conninfo(self, ep: Endpoint, timeout: float) -> str:
        login = guarded("the database credentials", self.login)
        return pg_adapter.make_conninfo(
            host=ep.host, port=ep.port, dbname=self.database, user=login.user, password=login.password,
            sslmode=self.sslmode, connect_timeout=max(2, int(timeout) - 1), application_name="taly-health",
            options=f"-c statement_timeout={int(max(timeout - 0.5, 0.5) * 1000)}")


def probes(env: Environment, th: Thresholds) -> list[Probe]:
    pg = PgAccess.of(env)
    t = th.timeouts.postgres
    out = [Probe(C, f"{pg.primary_id}: accepting connections", partial(primary_up, pg, t), liveness=True, timeout=t)]
    for rid, ep in pg.replicas:
        out.append(Probe(C, f"{rid}: accepting connections", partial(replica_up, pg, rid, ep, t), liveness=True,
                         timeout=t))
    for rid, ep in pg.replicas:
        out.append(Probe(C, f"{rid}: replication", partial(replication, pg, rid, ep, th, t), timeout=t))
    out += [
        Probe(C, "streaming replicas", partial(streaming_replicas, pg, t), timeout=t),
        Probe(C, "connections", partial(connections, pg, th, t), timeout=t),
        Probe(C, "oldest transaction", partial(oldest_transaction, pg, th, t), timeout=t),
        Probe(C, "xid wraparound headroom", partial(xid_headroom, pg, th, t), timeout=t),
    ]
    return out


def _query(pg: PgAccess, ep: Endpoint, timeout: float, sql: str, params: tuple = ()) -> list[tuple]:
    return pg_adapter.query(pg.conninfo(ep, timeout), sql, params)


def _error(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:300]


def primary_up(pg: PgAccess, timeout: float):
    rec = Recorder(C)
    sql = "SELECT pg_is_in_recovery(), current_setting('server_version')"
    try:
        in_recovery, version = _query(pg, pg.primary, timeout, sql)[0]
    except CredentialsUnavailable as exc:
        rec.add(f"{pg.primary_id}: accepting connections", "unknown", "no credentials", None, str(exc))
        return rec.results
    except Exception as exc:  # noqa: BLE001 - any failure to connect is the verdict
        rec.add(f"{pg.primary_id}: accepting connections", "fail", "not accepting", None,
                f"connect {pg.primary}: {_error(exc)}")
        return rec.results
    rec.add(f"{pg.primary_id}: accepting connections", "ok", "accepting", None,
            f"connect {pg.primary}; SELECT 1 (PostgreSQL {version})")
    rec.add(f"{pg.primary_id}: not in recovery", "fail" if in_recovery else "ok",
            "in recovery" if in_recovery else "primary", "not in recovery",
            f"{pg.primary}: SELECT pg_is_in_recovery() -> {in_recovery}")
    return rec.results


def replica_up(pg: PgAccess, rid: str, ep: Endpoint, timeout: float):
    rec = Recorder(C)
    try:
        (in_recovery,), = _query(pg, ep, timeout, "SELECT pg_is_in_recovery()")
    except CredentialsUnavailable as exc:
        rec.add(f"{rid}: accepting connections", "unknown", "no credentials", None, str(exc))
        return rec.results
    except Exception as exc:  # noqa: BLE001
        rec.add(f"{rid}: accepting connections", "fail", "not accepting", None, f"connect {ep}: {_error(exc)}")
        return rec.results
    rec.add(f"{rid}: accepting connections", "ok", "accepting", None, f"connect {ep}; SELECT pg_is_in_recovery()")
    rec.add(f"{rid}: in recovery", "ok" if in_recovery else "fail", "standby" if in_recovery else "promoted",
            "in recovery", f"{ep}: SELECT pg_is_in_recovery() -> {in_recovery}")
    return rec.results


REPLICA_SQL = (
    "SELECT pg_is_in_recovery(), (SELECT status FROM pg_stat_wal_receiver LIMIT 1), pg_last_wal_replay_lsn()::text, "
    "CASE WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0 "
    "ELSE extract(epoch FROM now() - pg_last_xact_replay_timestamp()) END"
)
SENDERS_SQL = (
    "SELECT application_name, client_addr::text, state, "
    "pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::bigint, extract(epoch FROM replay_lag)::float8, "
    "CASE WHEN %s::text IS NULL THEN NULL ELSE abs(pg_wal_lsn_diff(replay_lsn, %s::pg_lsn)) END "
    "FROM pg_stat_replication"
)


def replication(pg: PgAccess, rid: str, ep: Endpoint, th: Thresholds, timeout: float):
    """Seen from both ends: the replica's WAL receiver and replay delay, the primary's walsender and byte lag.

    A replica that cannot be reached is not replicating: that is a failure naming it.
    """
    rec = Recorder(C)
    name = f"{rid}: replication"
    lag_s, lag_b = th.postgres.replication_lag_seconds, th.postgres.replication_lag_bytes
    threshold = lag_s.describe(" s")
    try:
        in_recovery, receiver, replay_lsn, replica_lag = _query(pg, ep, timeout, REPLICA_SQL)[0]
    except CredentialsUnavailable:
        raise
    except Exception as exc:  # noqa: BLE001
        senders = _senders_note(pg, timeout)
        rec.add(name, "fail", "not replicating", threshold,
                f"replica {rid} at {ep} unreachable ({_error(exc)}); primary {pg.primary_id}: {senders}")
        return rec.results
    if not in_recovery:
        rec.add(name, "fail", "not a standby", threshold, f"replica {rid} at {ep}: pg_is_in_recovery() = false")
        return rec.results
    try:
        rows = _query(pg, pg.primary, timeout, SENDERS_SQL, (replay_lsn, replay_lsn))
    except Exception as exc:  # noqa: BLE001
        rows, primary_error = None, _error(exc)
    else:
        primary_error = None
    sender = min(rows, key=lambda r: (r[5] is None, r[5] or 0)) if rows else None

    seconds = float(replica_lag or 0.0)
    lag_bytes = int(sender[3]) if sender is not None and sender[3] is not None else None
    if lag_bytes == 0 and sender[2] == "streaming":
        # Replayed everything the primary has written: no delay, however long ago the last commit was (a
        # freshly restarted standby reports no receive position until new WAL arrives, which made the
        # replica-side estimate "seconds since the last commit").
        seconds = 0.0
    if sender is not None and sender[4] is not None:
        seconds = max(seconds, float(sender[4]))
    status = lag_s.grade(seconds)
    problems = []
    if receiver != "streaming":
        problems.append(f"WAL receiver {receiver or 'not running'}")
    if sender is None:
        problems.append("no walsender on the primary" if primary_error is None else f"primary unreachable ({primary_error})")
    elif sender[2] != "streaming":
        problems.append(f"walsender state {sender[2]}")
    if problems:
        status = "fail"
    elif lag_bytes is not None and lag_b.grade(lag_bytes) == "warn" and status == "ok":
        status = "warn"
    observed = f"{seconds:.1f} s" + (f", {_bytes(lag_bytes)}" if lag_bytes is not None else "")
    primary_side = ("no matching pg_stat_replication row" if sender is None else
                    f"pg_stat_replication state={sender[2]}, pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)="
                    f"{_bytes(lag_bytes)}, replay_lag={'n/a' if sender[4] is None else f'{sender[4]:.1f} s'}")
    detail = (f"{'; '.join(problems) + '. ' if problems else ''}replica {rid} ({ep}): pg_stat_wal_receiver.status="
              f"{receiver}, replay delay {float(replica_lag or 0):.1f} s; primary {pg.primary_id}: {primary_side}")
    rec.add(name, status, observed, threshold + f"; bytes {lag_b.describe(' MiB', 1024 * 1024)}", detail)
    return rec.results


def _senders_note(pg: PgAccess, timeout: float) -> str:
    try:
        rows = _query(pg, pg.primary, timeout, "SELECT state FROM pg_stat_replication")
    except Exception as exc:  # noqa: BLE001
        return f"unreachable too ({_error(exc)})"
    streaming = sum(1 for (state,) in rows if state == "streaming")
    return f"{streaming} walsender(s) streaming for {len(pg.replicas)} contracted replica(s)"


def _bytes(n: int | None) -> str:
    if n is None:
        return "n/a"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def streaming_replicas(pg: PgAccess, timeout: float):
    rec = Recorder(C)
    rows = _query(pg, pg.primary, timeout, "SELECT state, count(*) FROM pg_stat_replication GROUP BY state")
    states = dict(rows)
    streaming, wanted = int(states.get("streaming", 0)), len(pg.replicas)
    rec.add("streaming replicas", "ok" if streaming >= wanted else "fail", f"{streaming} of {wanted}",
            f">= {wanted} (contracted replicas)",
            f"{pg.primary}: SELECT state, count(*) FROM pg_stat_replication -> {states or 'no rows'}")
    return rec.results


def connections(pg: PgAccess, th: Thresholds, timeout: float):
    rec = Recorder(C)
    sql = ("SELECT count(*), current_setting('max_connections')::int FROM pg_stat_activity "
           "WHERE backend_type = 'client backend'")
    used, maximum = _query(pg, pg.primary, timeout, sql)[0]
    pct = 100.0 * used / maximum if maximum else 0.0
    lim = th.postgres.connections_percent
    rec.add("connections", lim.grade(pct), f"{pct:.0f} % ({used}/{maximum})", lim.describe(" %"),
            f"{pg.primary}: count(*) of client backends in pg_stat_activity vs max_connections")
    return rec.results


def oldest_transaction(pg: PgAccess, th: Thresholds, timeout: float):
    rec = Recorder(C)
    sql = ("SELECT extract(epoch FROM now() - xact_start)::float8, pid, state FROM pg_stat_activity "
           "WHERE xact_start IS NOT NULL AND backend_type = 'client backend' AND pid <> pg_backend_pid() "
           "ORDER BY xact_start LIMIT 1")
    rows = _query(pg, pg.primary, timeout, sql)
    lim = th.postgres.oldest_transaction_seconds
    age, pid, state = rows[0] if rows else (0.0, None, None)
    observed = f"{age:.0f} s" + (f" (pid {pid}, {state})" if pid else " (none open)")
    rec.add("oldest transaction", lim.grade(age), observed, lim.describe(" s"),
            f"{pg.primary}: max(now() - xact_start) over pg_stat_activity client backends")
    return rec.results


def xid_headroom(pg: PgAccess, th: Thresholds, timeout: float):
    rec = Recorder(C)
    sql = "SELECT datname, age(datfrozenxid) FROM pg_database ORDER BY 2 DESC LIMIT 1"
    datname, age = _query(pg, pg.primary, timeout, sql)[0]
    headroom = 100.0 * (1 - age / XID_HORIZON)
    lim = th.postgres.xid_headroom_percent
    rec.add("xid wraparound headroom", lim.grade(headroom), f"{headroom:.1f} % (age {age} in {datname})",
            lim.describe(" %"), f"{pg.primary}: max(age(datfrozenxid)) over pg_database vs 2^31")
    return rec.results
