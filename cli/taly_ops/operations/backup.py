"""Logical backups: pg_dump from a consistent snapshot of the replica, a manifest, and the backups bucket.

The snapshot is exported (pg_export_snapshot, which PostgreSQL 15 allows on a hot standby) from a
REPEATABLE READ transaction on the replica; the row counts, content checksums and schema fingerprint
are computed in that same transaction while pg_dump dumps that same snapshot (--snapshot), so the
manifest describes exactly what the dump holds. The primary (the write endpoint) is only used when
the environment has no replica.

Layout in the bucket:  backups/<id>/manifest.json and backups/<id>/dump/<pg_dump -Fd files>.
"""

from __future__ import annotations

import datetime as dt
import secrets
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..errors import BadInput, Unreachable

Progress = Callable[[str], None]
BACKUPS_PREFIX = "backups/"
DRILLS_PREFIX = "drills/"
MANIFEST = "manifest.json"
JOBS = 2
# gzip's fastest level: at 1M rows, -Z 1 dumps in 1.3 s against 3.1 s for pg_dump's default (-Z 6), for
# 40.6 MB against 32.9 MB. Restoring reads either at the same speed.
COMPRESS = 1
CLOUD_ENVS = ("dev", "staging", "prod")


def _noop(line: str) -> None:
    pass


def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def iso(t: dt.datetime | None) -> str | None:
    return t.astimezone(dt.timezone.utc).isoformat(timespec="milliseconds") if t else None


@dataclass
class Environment:
    """Where an environment's database and backups bucket are, and where local bookkeeping goes.

    `local` comes from the local estate's state file; dev, staging and prod from contracts/<env>.json
    (what the Pulumi program exports), with the database credentials read from Secrets Manager.
    """

    name: str
    primary: Any  # postgres_tools.Endpoint
    replica: Any | None
    store: Any  # s3_store.Store
    state_dir: Path  # audit log, drills registry, scratch instances
    targets: dict[str, Any] = field(default_factory=dict)
    contract: Any = None  # taly_platform.contract.EnvironmentContract
    aws: dict[str, Any] | None = None  # the local estate's emulator (endpoint_url, region, keys); None: the default chain

    @property
    def is_local(self) -> bool:
        return self.name == "local"

    @property
    def source(self):
        return self.replica or self.primary

    def aws_client(self, service: str):
        """A boto3 client: the emulator locally, the default credential chain in the contract's region otherwise.

        The default chain honours AWS_ENDPOINT_URL, AWS_PROFILE and the rest, as boto3 documents.
        """
        import boto3
        from botocore.config import Config

        config = Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=5, read_timeout=60)
        if self.aws:
            return boto3.session.Session().client(
                service, endpoint_url=self.aws["endpoint_url"], region_name=self.aws["region"],
                aws_access_key_id=self.aws["access_key_id"], aws_secret_access_key=self.aws["secret_access_key"],
                config=config)
        return boto3.session.Session().client(service, region_name=self.contract.region, config=config)

    def source_addresses(self) -> set[tuple[str, int]]:
        eps = [self.primary] + ([self.replica] if self.replica else [])
        return {a for ep in eps for a in addresses(ep.host, ep.port)}


def addresses(host: str, port: int) -> set[tuple[str, int]]:
    """Every (host, port) an endpoint answers on: its name and the addresses it resolves to (loopback as one)."""
    return {(h, int(port)) for h in _aliases(host)}


def _aliases(host: str) -> set[str]:
    import socket

    names = {host}
    try:
        names |= {info[4][0] for info in socket.getaddrinfo(host, None)}
    except OSError:
        pass
    if names & {"127.0.0.1", "::1", "localhost"}:
        names |= {"127.0.0.1", "::1", "localhost"}
    return names


def targets(contract: Any = None) -> dict[str, Any]:
    """RPO and RTO targets: the contract's (the stack's BackupConfig), else BackupConfig's defaults."""
    if contract is not None:
        return {"rpo_minutes": contract.backup.rpo_minutes, "rto_minutes": contract.backup.rto_minutes,
                "source": f"the {contract.environment} contract (stack config taly:backup)"}
    from taly_platform.config import BackupConfig

    cfg = BackupConfig()
    return {"rpo_minutes": cfg.rpo_minutes, "rto_minutes": cfg.rto_minutes,
            "source": "BackupConfig defaults (the local environment has no stack config)"}


STATE_ENV_VAR = "TALY_STATE_DIR"


def cloud_state_dir(env: str, option: Path | None = None) -> Path:
    """Where a cloud environment's audit log and drill registry live on this machine.

    --state-dir, else $TALY_STATE_DIR/<env>, else .taly/<env> under the project root.
    """
    import os

    from ..project import project_root

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


def resolve(env: str, state_dir: Path | None = None) -> Environment:
    """The environment's endpoints and backups bucket: the local estate, or a cloud environment's contract."""
    if env in CLOUD_ENVS:
        return _resolve_cloud(env, state_dir)
    if env != "local":
        raise BadInput(f"unknown environment '{env}'; known: local, {', '.join(CLOUD_ENVS)}")
    from ..adapters.postgres_tools import Endpoint
    from ..adapters.s3_store import Store
    from ..local.state import load, resolve_state_dir
    from taly_platform.contract import EnvironmentContract

    sd = resolve_state_dir(state_dir)
    state = load(sd)
    if state is None or not state.endpoints or not state.contract:
        raise Unreachable(f"no local estate in {sd}", hint="start it with `taly local up` (or pass --state-dir)")

    def ep(role: str) -> Endpoint | None:
        e = state.endpoints.get("postgres", {}).get(role)
        if not e:
            return None
        return Endpoint(e["host"], int(e["port"]), e["user"], e["password"], e["database"], role)

    aws = state.endpoints["aws"]
    store = Store(bucket=state.contract["buckets"]["backups"], endpoint_url=aws["endpoint_url"], region=aws["region"],
                  access_key_id=aws["access_key_id"], secret_access_key=aws["secret_access_key"])
    try:
        contract = EnvironmentContract.model_validate(state.contract)
    except ValueError:
        contract = None  # a state file from an older version: the database and the bucket are all a backup needs
    return Environment("local", ep("primary"), ep("replica"), store, sd, targets(), contract=contract, aws=dict(aws))


def _resolve_cloud(env: str, state_dir: Path | None) -> Environment:
    """dev/staging/prod from contracts/<env>.json; credentials from the contract's master secret."""
    import json

    from ..adapters.postgres_tools import Endpoint
    from ..adapters.s3_store import Store
    from ..health.target import Endpoint as HostPort
    from .health import resolve_target

    target = resolve_target(env, None)  # BadInput (exit 2) when the contract is missing or invalid
    contract = target.contract
    db = contract.database
    environment = Environment(env, None, None, Store(bucket=contract.buckets.backups, region=contract.region),
                              cloud_state_dir(env, state_dir), targets(contract), contract=contract)
    try:
        sm = environment.aws_client("secretsmanager")
        secret = json.loads(sm.get_secret_value(SecretId=db.master_secret_arn)["SecretString"])
        user, password = secret["username"], secret["password"]
    except Exception as exc:  # noqa: BLE001 - botocore's errors, a malformed secret: one line, exit 3
        text = " ".join(str(exc).split()) or type(exc).__name__
        raise Unreachable(f"cannot read the {env} database credentials from Secrets Manager "
                          f"({db.master_secret_arn}): {type(exc).__name__}: {text}"[:400],
                          hint="are AWS credentials for this account set (AWS_PROFILE, AWS_REGION)?") from None
    environment.primary = Endpoint(db.primary_endpoint, db.port, user, password, db.database, "primary", "require")
    if db.replica_endpoints:
        hp = HostPort.parse(db.replica_endpoints[0], db.port)
        environment.replica = Endpoint(hp.host, hp.port, user, password, db.database, "replica", "require")
    return environment


def contract_addresses(env: str) -> set[tuple[str, int]] | None:
    """Every (host, port) the database of `env` answers on, from contracts/<env>.json alone (no credentials).

    None when there is no contract for it; a contract that exists but cannot be read is BadInput, for
    a safety net must not switch itself off. A safety net for commands that write to one environment:
    a contract copied from another (say staging's file still pointing at prod) must not lead there.
    """
    from ..health.target import Endpoint as HostPort
    from ..project import project_root
    from .health import CONTRACTS_DIR, resolve_target

    root = project_root()
    if not (root / CONTRACTS_DIR / f"{env}.json").exists():
        return None
    try:
        db = resolve_target(env, root).contract.database
    except BadInput as exc:
        raise BadInput(f"cannot check against {env}'s endpoints: {exc.message}", hint=exc.hint) from None
    eps = [HostPort(db.primary_endpoint, db.port)] + [HostPort.parse(e, db.port) for e in db.replica_endpoints]
    return {a for ep in eps for a in addresses(ep.host, ep.port)}


def new_backup_id(t: dt.datetime) -> str:
    return t.strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)


# --- create -----------------------------------------------------------------------------------------

def create(env: Environment, progress: Progress = _noop) -> dict[str, Any]:
    """Dump, fingerprint and upload one backup; returns its manifest.

    SIGTERM and SIGINT raise drill.Interrupted, so the local work directory is always removed; an
    interrupted backup has no manifest in the bucket and is never listed or restored.
    """
    from .drill import _signals_raise

    with _signals_raise():
        return _create(env, progress)


def _create(env: Environment, progress: Progress) -> dict[str, Any]:
    from .. import audit

    started = now()
    t0 = time.monotonic()
    backup_id = new_backup_id(started)
    inputs = {"source": env.source.public(), "bucket": env.store.bucket}
    try:
        env.store.check()
        work = env.state_dir / "backups-work" / backup_id
        dump_dir = work / "dump"
        work.mkdir(parents=True, mode=0o700)
        try:
            manifest = _dump(env, backup_id, dump_dir, started, progress)
            t_dump = time.monotonic() - t0
            progress(f"{time.monotonic() - t0:5.1f}s  uploading {len(manifest['files'])} files "
                     f"({manifest['total_bytes']:,} bytes) to s3://{env.store.bucket}/{BACKUPS_PREFIX}{backup_id}/")
            for f in manifest["files"]:
                env.store.upload_file(dump_dir / f["path"], f"{BACKUPS_PREFIX}{backup_id}/dump/{f['path']}")
            manifest["timings"] = {"dump_seconds": round(t_dump, 2), "upload_seconds": round(time.monotonic() - t0 - t_dump, 2)}
            manifest["completed_at"] = iso(now())
            manifest["duration_seconds"] = round(time.monotonic() - t0, 2)
            env.store.put_json(f"{BACKUPS_PREFIX}{backup_id}/{MANIFEST}", manifest)  # last: its presence marks a complete backup
        finally:
            shutil.rmtree(work, ignore_errors=True)
            try:
                work.parent.rmdir()
            except OSError:
                pass
    except BaseException as exc:
        outcome = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
        audit.record(env.state_dir, "backup.create", env.name, inputs=inputs, outcome=outcome,
                     detail={"backup_id": backup_id, "error": getattr(exc, "message", None) or repr(exc)})
        raise
    progress(f"{time.monotonic() - t0:5.1f}s  backup {backup_id} complete")
    audit.record(env.state_dir, "backup.create", env.name, inputs=inputs, outcome="ok", before=None,
                 after={"backup_id": backup_id, "key": f"{BACKUPS_PREFIX}{backup_id}/{MANIFEST}",
                        "snapshot_at": manifest["snapshot"]["at"], "total_bytes": manifest["total_bytes"],
                        "rows": sum(t["rows"] for t in manifest["tables"].values())})
    return manifest


def _dump(env: Environment, backup_id: str, dump_dir: Path, started: dt.datetime, progress: Progress) -> dict[str, Any]:
    from ..adapters import postgres_tools as pgt

    src = env.source
    conn = pgt.connect(src, autocommit=False)
    try:
        with conn.cursor() as cur:
            cur.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            cur.execute("SELECT pg_export_snapshot(), clock_timestamp(), pg_is_in_recovery(), "
                        "CASE WHEN pg_is_in_recovery() THEN pg_last_xact_replay_timestamp() END, "
                        "CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn()::text ELSE pg_current_wal_lsn()::text END, "
                        "CASE WHEN pg_is_in_recovery() THEN pg_last_wal_receive_lsn() IS DISTINCT FROM pg_last_wal_replay_lsn() "
                        "ELSE false END")
            snapshot, snap_at, in_recovery, replayed_at, lsn, behind = cur.fetchone()
            # The restore point is the moment of the snapshot, unless the replica had received WAL it had not
            # replayed yet: then the data is as of its last replayed commit (the primary is never asked).
            point = replayed_at if behind and replayed_at else snap_at
        progress(f"snapshot {snapshot} on {src.role} {src.address} at {iso(snap_at)}; pg_dump -Fd -j {JOBS} "
                 f"-Z {COMPRESS}, counting rows and checksumming tables in the same snapshot meanwhile")

        def fingerprint() -> tuple[dict[str, Any], dict[str, Any]]:
            return pgt.table_stats(conn), pgt.schema_fingerprint(conn)

        # The exporting transaction stays open (the snapshot stays importable) until pg_dump is done.
        stats, schema = pgt.pg_dump(src, dump_dir, snapshot=snapshot, jobs=JOBS, compress=COMPRESS, meanwhile=fingerprint)
        progress("pg_dump done; hashing the files")
        server = pgt.server_version(conn)
        conn.rollback()
    except pgt.ToolFailed as exc:
        raise Unreachable(f"backup of {src.address} failed: {exc.message}", hint=exc.output) from None
    finally:
        conn.close()
    files = [{"path": p, "size": size, "sha256": digest} for p, size, digest in pgt.file_digests(dump_dir)]
    return {
        "format": 1, "backup_id": backup_id, "environment": env.name, "created_at": iso(started),
        "method": f"pg_dump -Fd -j {JOBS} -Z {COMPRESS} --snapshot (exported from a REPEATABLE READ transaction)",
        "source": src.public(),
        "snapshot": {"id": snapshot, "at": iso(point), "taken_at": iso(snap_at), "in_recovery": in_recovery,
                     "last_replayed_commit_at": iso(replayed_at), "replay_behind_receive": behind, "lsn": lsn},
        "tool_versions": {**pgt.tool_versions(), "server": server},
        "files": files, "total_bytes": sum(f["size"] for f in files),
        "tables": stats, "schema": schema,
    }


# --- read -------------------------------------------------------------------------------------------

def list_backups(env: Environment) -> list[dict[str, Any]]:
    """Complete backups (those with a manifest), oldest first."""
    env.store.check()
    out = []
    for entry in env.store.keys(BACKUPS_PREFIX, delimiter="/"):
        prefix = entry.get("Prefix")
        if not prefix:
            continue
        try:
            m = env.store.get_json(f"{prefix}{MANIFEST}")
        except KeyError:
            continue  # incomplete: the manifest is written last
        out.append(summary(m))
    return sorted(out, key=lambda b: b["backup_id"])


def summary(m: dict[str, Any]) -> dict[str, Any]:
    return {"backup_id": m["backup_id"], "snapshot_at": m["snapshot"]["at"], "created_at": m["created_at"],
            "source": f"{m['source']['role']} {m['source']['host']}:{m['source']['port']}",
            "total_bytes": m["total_bytes"], "files": len(m["files"]), "tables": len(m["tables"]),
            "rows": sum(t["rows"] for t in m["tables"].values())}


def manifest(env: Environment, backup_id: str) -> dict[str, Any]:
    """The manifest of backup_id, or of the latest backup for 'latest'; BadInput when there is none."""
    env.store.check()
    if backup_id == "latest":
        backups = list_backups(env)
        if not backups:
            raise BadInput(f"there is no backup of {env.name} in s3://{env.store.bucket}/{BACKUPS_PREFIX}",
                           hint=f"take one with `taly backup create --env {env.name}`")
        backup_id = backups[-1]["backup_id"]
    if not backup_id or "/" in backup_id:
        raise BadInput(f"invalid backup id {backup_id!r}")
    try:
        return env.store.get_json(f"{BACKUPS_PREFIX}{backup_id}/{MANIFEST}")
    except KeyError:
        raise BadInput(f"unknown backup id {backup_id} in s3://{env.store.bucket}/{BACKUPS_PREFIX}",
                       hint=f"`taly backup list --env {env.name}` lists them") from None
