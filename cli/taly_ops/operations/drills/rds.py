"""Restore drills against RDS: a snapshot or a point in time of the primary, restored into a scratch instance.

The restore point is the latest available snapshot of the contract's primary (`snapshot`), its
LatestRestorableTime (`pitr`), or a named snapshot; RPO is the drill's start minus the restore
point. The scratch instance, `taly-drill-<env>-<yyyymmdd>t<hhmmss>-<hex>`, goes into the contract's
DB subnet group and its drill-only security group, private, single-AZ, without deletion protection
or backups, tagged taly:drill=true. Once available it is verified over TLS with the master
credentials (Secrets Manager): the schema fingerprint against the source replica's current one, the
invariants and smoke queries of the drill spec (drill.verify_database). RTO is the drill's start
to a verified restore. The instance is deleted (no final snapshot, automated backups too) whatever
happens: success, failure, SIGTERM, Ctrl-C; with --keep it stays, and `taly drill reap` removes it.
A signal during the restore call itself may leave RDS with an instance it has accepted but does not
describe yet: the teardown looks for it again for TEARDOWN_SETTLE_SECONDS, and says so if it never
showed (it may still appear: `taly drill reap`).

`reap` cannot tell whether a drill on another host still runs (the taly:owner tag's pid is that host's):
an instance owned by another host and started less than OTHER_HOST_DRILL_HOURS ago is left alone
unless --force.

The data checks connect to the restored instance, so a cloud drill verifies only where that
instance answers: inside the VPC, from a network the stack's database.drillClientCidrs admits.
"""

from __future__ import annotations

import datetime as dt
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...errors import BadInput, Unreachable
from ..backup import iso, now
from ..steps import Change, Clock, Guarded, Outcome, Steps, confirm, execute
from ...environment import Environment
from ..steps import Progress, quiet
from .rds_reap import WAIT_MINUTES, delete, mark_kept, owner_tag  # noqa: F401 - WAIT_MINUTES: the default wait
from ..reports import DrillReport
from .report import dry_run_report, finish, new_report
from .spec import SPEC, load_spec
from .verification import verify_database

KEYWORDS = ("snapshot", "pitr")
TEARDOWN_SETTLE_SECONDS = 30  # after a restore request was sent: how long describe may lag before "not found"
TEARDOWN_SETTLE_POLL = 2.0    # ... and how often to look again meanwhile


def is_rds_source(source: str) -> bool:
    """`snapshot`, `pitr` or an RDS snapshot identifier (they begin with a letter; logical backup ids with a digit)."""
    return source in KEYWORDS or (bool(source) and source[0].isalpha() and source != "latest")


def new_drill_id(env: str, t: dt.datetime) -> str:
    """taly-drill-<env>-<yyyymmdd>t<hhmmss>-<hex>: also the scratch instance's identifier (lower case, as RDS keeps it)."""
    return f"taly-drill-{env}-{t.strftime('%Y%m%dt%H%M%S')}-{secrets.token_hex(3)}"


def choose_restore_point(env: Environment, rds, source: str, started: dt.datetime) -> dict[str, Any]:
    """{"kind": snapshot|pitr, "at": datetime, "snapshot_id": ..., "rpo_seconds": ...}; BadInput when there is none."""
    from ...adapters import rds as rds_api
    from ..rds_backup import point_in_time, primary

    db = env.contract.database
    inst = primary(env, rds)
    hint_list = f"`taly backup list --env {env.name}` lists the snapshots and the point-in-time window"
    if source == "pitr":
        window = point_in_time(inst, rds_api.automated_backups(rds, db.primary_id))
        latest = rds_api.utc(inst.get("LatestRestorableTime"))
        if latest is None or not window["enabled"]:
            raise BadInput(f"{db.primary_id} has no point-in-time window (BackupRetentionPeriod="
                           f"{window['backup_retention_days']}, LatestRestorableTime={iso(latest)})",
                           hint="automated backups must be on (taly:database.backupRetentionDays)")
        point = {"kind": "pitr", "at": latest, "snapshot_id": None, "window": window}
    else:
        if source == "snapshot":
            ready = [s for s in rds_api.snapshots(rds, db.primary_id) if s.get("Status") == "available"]
            if not ready:
                raise BadInput(f"{db.primary_id} has no available snapshot",
                               hint=f"take one with `taly backup create --env {env.name} --kind snapshot`")
            snap = ready[-1]
        else:
            try:
                snap = rds_api.snapshot(rds, source)
            except rds_api.NotFound:
                raise BadInput(f"unknown snapshot '{source}': RDS in {env.contract.region} has no such DB snapshot; "
                               f"--from takes snapshot, pitr, a snapshot id or (logical) latest or a backup id",
                               hint=hint_list) from None
            if (snap.get("DBInstanceIdentifier") or "").lower() != db.primary_id.lower():
                raise BadInput(f"snapshot {source} is of {snap.get('DBInstanceIdentifier')}, not of {env.name}'s "
                               f"primary {db.primary_id}", hint=hint_list)
            if snap.get("Status") != "available":
                raise BadInput(f"snapshot {source} is {snap.get('Status')}, not available", hint=hint_list)
        point = {"kind": "snapshot", "at": rds_api.utc(snap["SnapshotCreateTime"]),
                 "snapshot_id": snap["DBSnapshotIdentifier"], "snapshot_type": snap.get("SnapshotType")}
    # A restore point read after the drill started (pitr: RDS's clock) is no data loss, not a negative one.
    point["rpo_seconds"] = round(max(0.0, (started - point["at"]).total_seconds()), 1)
    return point


def source_endpoints(env: Environment) -> dict[str, tuple[str, int]]:
    """The contract's database endpoints (and the resolved primary/replica), name -> (host lower-cased, port)."""
    from ...environment import HostPort

    db = env.contract.database
    out = {db.primary_id: (db.primary_endpoint.lower(), int(db.port))}
    for rid, ep in zip(db.replica_ids, db.replica_endpoints):
        hp = HostPort.parse(ep, db.port)
        out[rid] = (hp.host.lower(), hp.port)
    for ep in (env.primary, env.replica):
        if ep is not None:
            out.setdefault(f"{ep.role} endpoint", (str(ep.host).lower(), int(ep.port)))
    return out


def refuse_target(env: Environment, target_id: str) -> None:
    db = env.contract.database
    protected = {db.primary_id.lower(), *(r.lower() for r in db.replica_ids)}
    if target_id.lower() in protected:
        raise BadInput(f"the drill's target instance {target_id} is a source of {env.name} "
                       f"(primary {db.primary_id}, replicas {', '.join(db.replica_ids) or 'none'}); refusing to restore")


def master_credentials(env: Environment) -> tuple[str, str]:
    from ...adapters.secrets import SecretUnreadable

    arn = env.contract.database.master_secret_arn
    try:
        login = env.database_login()
    except SecretUnreadable as exc:
        raise Unreachable(f"cannot read the master credentials of {env.name} ({arn}): {exc}"[:400],
                          hint="the drill verifies the restored instance with them") from None
    return login.user, login.password


def restore(env: Environment, source: str, *, keep: bool = False, spec_path: Path | None = None,
            wait_minutes: float = WAIT_MINUTES, progress: Progress = quiet, clock: Clock | None = None,
            dry_run: bool = False) -> DrillReport:
    """Run one RDS drill; returns its report (status passed|failed), the local drill's shape plus RDS details.

    Before anything is created, BadInput (exit 2: no such snapshot, no window, a target that is a source,
    a contract without the drill's subnet group or security group) or Unreachable (exit 3). During the
    drill they are raised after the teardown and the report, and so is Interrupted (SIGTERM/SIGINT).
    """
    from ...adapters import rds as rds_api
    from ...project import project_root
    from ..rds_backup import require_cloud

    require_cloud(env, f"--from {source}")
    steps = Steps(progress, clock=clock or time.monotonic)
    started = now()
    spec_path = spec_path or project_root() / SPEC
    spec = load_spec(spec_path)
    db = env.contract.database
    if not db.subnet_group_name or not db.drill_security_group_id:
        raise BadInput(f"the {env.name} contract names no DB subnet group or drill security group for the scratch "
                       "instance", hint=f"pulumi up the stack, then pulumi stack output --stack {env.name} --json "
                                        f"> contracts/{env.name}.json")
    rds = env.aws_client("rds")
    point = choose_restore_point(env, rds, source, started)
    drill_id = target_id = new_drill_id(env.name, started)
    refuse_target(env, target_id)
    if rds_api.instance(rds, target_id) is not None:
        raise BadInput(f"an RDS instance named {target_id} already exists; refusing to restore over it")
    credentials = master_credentials(env)
    rpo = point["rpo_seconds"]

    tags = {"taly:drill": "true", "taly:drill-id": drill_id, "taly:environment": env.name,
            "taly:started-at": iso(started), "taly:owner": owner_tag(), "taly:restore-point-kind": point["kind"]}
    if point["snapshot_id"]:
        tags["taly:source-snapshot"] = point["snapshot_id"]
    settings = rds_api.scratch_settings(subnet_group=db.subnet_group_name,
                                        security_group_id=db.drill_security_group_id, tags=tags)
    report = new_report(
        env, drill_id, started, steps, spec_path, backup_id=point["snapshot_id"], restore_point_kind=point["kind"],
        restore_point=iso(point["at"]), snapshot_id=point["snapshot_id"],
        source={"instance_id": db.primary_id, "role": "primary", "database": db.database,
                "schema_from": env.source.public() if env.source is not None else None},
        target={"name": target_id, "instance_id": target_id, "host": None, "port": None, "kind": "rds scratch instance",
                "subnet_group": db.subnet_group_name, "security_group_id": db.drill_security_group_id,
                "publicly_accessible": False, "multi_az": False, "tags": tags},
        rpo_seconds=rpo,
        verification={"method": "schema of the source replica now, invariants and smoke queries, on the restored "
                                "instance (an RDS restore has no manifest: no file or per-table checks)",
                      "files_passed": None, "error": None})
    what = f"snapshot {point['snapshot_id']}" if point["kind"] == "snapshot" else f"{db.primary_id} at {iso(point['at'])}"
    change = Change(
        "drill.restore", f"drill {drill_id}", env.name, env.state_dir,
        {"from": source, "restore_point_kind": point["kind"], "snapshot_id": point["snapshot_id"],
         "restore_point": iso(point["at"]), "keep": keep, "spec": str(spec_path), "target": target_id},
        [f"restore {what} into the scratch RDS instance {target_id} (subnet group {db.subnet_group_name}, "
         f"security group {db.drill_security_group_id}, private, single-AZ), tagged taly:drill=true",
         f"wait up to {wait_minutes:g} minutes until it is available",
         "verify over TLS: the schema against the source replica's, the spec's invariants and smoke queries",
         f"measure RPO (now {rpo:.0f}s) and RTO; store the report in the bucket",
         "keep the instance (remove it with `taly drill reap`)" if keep else "delete the instance"],
        changes_environment=False,  # only the scratch instance it creates (and deletes): the source is read
        before={"source": db.primary_id}, after={"drill_id": drill_id, "target": report["target"]})
    if dry_run:
        return dry_run_report(report, change.plan, steps)
    confirm(change, steps)
    progress(f"drill {drill_id}: restoring {what} (RPO {rpo:.0f}s) into the scratch RDS instance {target_id} "
             f"(subnet group {db.subnet_group_name}, security group {db.drill_security_group_id})")
    plan = RdsRestore(point, target_id, settings, credentials, spec, wait_minutes)

    def clean_up(o: Guarded) -> dict[str, Any]:
        # A refused restore (its endpoint is a source's) is deleted even with --keep.
        kept = keep and o.interrupted is None and plan.sent and not isinstance(o.raise_after, BadInput)
        # Sent and not refused by RDS (accepted, or interrupted/unanswered mid-call): it exists or soon will.
        settle = TEARDOWN_SETTLE_SECONDS if plan.sent and not plan.refused else 0
        return teardown(env, rds, target_id, keep=kept, progress=progress, settle_seconds=settle)

    def conclude(o: Guarded) -> Outcome:
        if report["cleanup"].get("kept"):
            report["cleanup"]["remove_with"] = (
                f"taly drill reap --env {env.name}  (or: aws rds delete-db-instance --db-instance-identifier "
                f"{target_id} --skip-final-snapshot --delete-automated-backups --region {env.contract.region})")
        return finish(env, report, steps=steps, interrupted=o.interrupted is not None,
                      before={"restore_point_kind": point["kind"], "snapshot_id": point["snapshot_id"],
                              "restore_point": report["restore_point"]})

    outcome = execute(change, lambda steps: _run(env, rds, plan, report, steps), clean_up, conclude, report, steps)
    if outcome.interrupted is not None:
        outcome.interrupted.cleanup = report["cleanup"]  # for the command's last line: was the instance removed?
    outcome.reraise()
    return DrillReport.model_validate(report)


@dataclass
class RdsRestore:
    """What an RDS drill restores, where, and how far the restore call got (sent; refused by RDS)."""

    point: dict[str, Any]
    target_id: str
    settings: dict[str, Any]
    credentials: tuple[str, str]
    spec: dict[str, Any]
    wait_minutes: float
    sent: bool = False
    refused: bool = False


def _run(env: Environment, rds, plan: RdsRestore, report: dict[str, Any], steps: Steps) -> None:
    """The drill's steps; plan.sent once the restore call starts, plan.refused if RDS answered no."""
    from ... import audit
    from ...adapters import postgres as pgt
    from ...adapters import rds as rds_api

    point, target_id, settings = plan.point, plan.target_id, plan.settings
    timings, ver, say = report["timings"], report["verification"], steps.say
    db = env.contract.database

    # 1. Ask RDS for the scratch instance. From here on the teardown deletes `target_id`, whatever happens.
    steps.reached("restore")
    lap = steps.clock()
    plan.sent = True
    call = "RestoreDBInstanceFromDBSnapshot" if point["kind"] == "snapshot" else "RestoreDBInstanceToPointInTime"
    try:
        if point["kind"] == "snapshot":
            inst = rds_api.restore_from_snapshot(rds, target_id, point["snapshot_id"], settings)
        else:
            inst = rds_api.restore_to_point_in_time(rds, db.primary_id, target_id, point["at"], settings)
    except BaseException as exc:
        # RDS's own refusal (bad input) created nothing; a signal or no answer leaves it unknown.
        plan.refused = isinstance(exc, BadInput)
        audit.record(env.state_dir, "drill.rds.restore", env.name, outcome="failed",
                     inputs={"call": call, "target": target_id, "snapshot_id": point["snapshot_id"],
                             "restore_time": iso(point["at"])},
                     detail={"error": getattr(exc, "message", None) or repr(exc)})
        raise
    audit.record(env.state_dir, "drill.rds.restore", env.name, outcome="requested",
                 inputs={"call": call, "target": target_id, "snapshot_id": point["snapshot_id"],
                         "restore_time": iso(point["at"]), "subnet_group": settings["DBSubnetGroupName"],
                         "security_groups": settings["VpcSecurityGroupIds"]},
                 after={"instance_id": target_id, "status": inst.get("DBInstanceStatus"), "arn": inst.get("DBInstanceArn")})
    say(f"{call} accepted: {target_id} is {inst.get('DBInstanceStatus')}; waiting until it is available")

    # 2. Wait until it is available.
    inst = rds_api.wait_available(rds, target_id, timeout=plan.wait_minutes * 60, progress=steps.progress)
    timings["restore_seconds"] = round(steps.clock() - lap, 2)
    endpoint = inst.get("Endpoint") or {}
    host, port = endpoint.get("Address"), int(endpoint.get("Port") or db.port)
    report["target"].update(host=host, port=port, status=inst.get("DBInstanceStatus"),
                            arn=inst.get("DBInstanceArn"), instance_class=inst.get("DBInstanceClass"))
    say(f"{target_id} available at {host}:{port} after {timings['restore_seconds']:.0f}s")
    if not host:
        raise Unreachable(f"RDS reports {target_id} available but gives no endpoint address")
    for name, address in source_endpoints(env).items():
        if (host.lower(), port) == address:
            raise BadInput(f"the restored endpoint {host}:{port} is the endpoint of {name}, a source of {env.name}; "
                           "refusing to verify against it")

    # 3. Verify, on the restored instance, against the source replica's schema and the spec.
    steps.reached("verify")  # the instance is available: a step hook may act here
    lap = steps.clock()
    user, password = plan.credentials
    target = pgt.Endpoint(host, port, user, password, db.database, "drill", "require")
    say(f"verifying {target.address}/{db.database} (sslmode=require): schema, invariants, smoke queries")
    try:
        conn = pgt.connect(target)
    except Unreachable as exc:
        ver["error"] = (f"cannot connect to the restored instance {target_id} at {target.address}: {exc.message}. "
                        "Cloud drills verify from inside the VPC (the ops runner), from a network the stack's "
                        "database.drillClientCidrs admits")
        report["error"] = f"verification failed: {ver['error']}"
        timings["verify_seconds"] = round(steps.clock() - lap, 2)
        say(f"verification FAILED: cannot connect to {target.address}")
        return
    with conn:
        expected, schema_error = source_schema(env)
        checks_passed = verify_database(conn, plan.spec, ver, expected_schema=expected, expected_tables=None,
                                        schema_error=schema_error)
    ver["passed"] = checks_passed
    if not checks_passed and schema_error:
        ver["error"] = schema_error
    timings["verify_seconds"] = round(steps.clock() - lap, 2)
    report["rto_seconds"] = round(steps.elapsed(), 2)
    say(f"verification {'passed' if ver['passed'] else 'FAILED'}; RTO {report['rto_seconds']:.1f}s")


def source_schema(env: Environment) -> tuple[dict[str, Any] | None, str | None]:
    """The source replica's (else the primary's) schema fingerprint now, or (None, why not)."""
    from ...adapters import postgres as pgt

    src = env.source
    if src is None:
        return None, f"{env.name} has no source endpoint to compare the schema with"
    try:
        with pgt.connect(src) as conn:
            return pgt.schema_fingerprint(conn), None
    except Unreachable as exc:
        return None, f"cannot read the source schema ({src.role} {src.address}): {exc.message}"


def teardown(env: Environment, rds, target_id: str, *, keep: bool, progress: Progress,
              settle_seconds: float = 0.0) -> dict[str, Any]:
    """Delete the scratch instance (or keep it, marked so `reap` may remove it); never raises.

    settle_seconds > 0 (the restore request was sent and not refused): an instance not described yet is
    looked for again that long, every TEARDOWN_SETTLE_POLL seconds, before it is taken not to exist; if it
    never shows, the result says so (error, remove_with) rather than that it was removed.
    """
    from ... import audit
    from ...adapters import rds as rds_api

    try:
        inst = rds_api.instance(rds, target_id)
        if inst is None and settle_seconds > 0:
            progress(f"{target_id} is not described yet although its restore was requested; looking again for up "
                     f"to {settle_seconds:.0f}s")
            t0 = time.monotonic()
            while inst is None and time.monotonic() - t0 < settle_seconds:
                time.sleep(TEARDOWN_SETTLE_POLL)
                inst = rds_api.instance(rds, target_id)
            if inst is None:
                message = (f"{target_id} not found after {time.monotonic() - t0:.0f}s; its restore was requested, so it "
                           f"may still appear: run taly drill reap --env {env.name}")
                progress(f"warning: {message}")
                audit.record(env.state_dir, "drill.rds.delete", env.name, inputs={"instance_id": target_id},
                             outcome="not-found", detail={"error": message})
                return {"kept": False, "instance_existed": None, "deleted": False, "instance_id": target_id,
                        "error": message, "remove_with": f"taly drill reap --env {env.name}"}
        if inst is None:
            return {"kept": False, "instance_existed": False, "deleted": False, "instance_id": target_id}
        if keep:
            mark_kept(rds, inst)
            endpoint = inst.get("Endpoint") or {}
            progress(f"kept {target_id} ({inst.get('DBInstanceStatus')}, {endpoint.get('Address')}:{endpoint.get('Port')}); "
                     f"remove it with `taly drill reap --env {env.name}`")
            audit.record(env.state_dir, "drill.rds.keep", env.name, inputs={"instance_id": target_id}, outcome="kept")
            return {"kept": True, "instance_existed": True, "deleted": False, "instance_id": target_id,
                    "status": inst.get("DBInstanceStatus")}
        result = delete(env, rds, target_id, progress=progress)
        return {"kept": False, "instance_existed": True, "instance_id": target_id, **result}
    except Exception as exc:  # noqa: BLE001 - the report says what is left, and how to remove it
        message = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
        progress(f"warning: could not delete {target_id}: {message}; remove it with `taly drill reap --env {env.name}`")
        audit.record(env.state_dir, "drill.rds.delete", env.name, inputs={"instance_id": target_id}, outcome="failed",
                     detail={"error": message})
        return {"kept": False, "instance_existed": None, "deleted": False, "instance_id": target_id, "error": message,
                "remove_with": f"taly drill reap --env {env.name}"}
