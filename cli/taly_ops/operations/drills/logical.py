"""The logical drill: a backup from the bucket restored into a scratch PostgreSQL on this machine, verified, timed.

RPO is the age of the backup's snapshot when the drill starts; RTO is the time from the drill's
start to a verified restore. The scratch instance is registered before it starts and always torn
down (success, failure, Ctrl-C, SIGTERM) unless --keep.
"""

from __future__ import annotations

import datetime as dt
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...errors import BadInput
from ..backup import now
from ...environment import Environment
from ..steps import Change, Clock, Progress, Steps, confirm, execute, quiet
from .registry import check_scratch_dir, drills_dir, register_scratch, start_scratch
from ..reports import DrillReport
from .report import dry_run_report, finish, new_report
from .scratch import teardown
from .spec import SPEC, load_spec
from .verification import download_verified, source_last_write, verify_database

MIN_PORT = 1024  # the scratch server runs unprivileged


def restore(env: Environment, backup: str = "latest", *, keep: bool = False, port: int | None = None,
            spec_path: Path | None = None, progress: Progress = quiet, clock: Clock | None = None,
            dry_run: bool = False) -> DrillReport:
    """Run one drill; returns its report (status passed|failed; dry-run: resolved and checked, nothing started).

    BadInput/Unreachable (exit 2/3) are raised before anything starts, or, when they happen during the
    drill, after the teardown and the report. Interrupted (SIGTERM/SIGINT) likewise, after the teardown.
    """
    from ...local import supervisor
    from ...project import project_root
    from .. import backup as backup_ops

    if port is not None and not MIN_PORT <= port <= 65535:
        raise BadInput(f"--port {port}: a scratch PostgreSQL listens on {MIN_PORT}-65535")
    steps = Steps(progress, clock=clock or time.monotonic)
    started = now()
    spec_path = spec_path or project_root() / SPEC
    spec = load_spec(spec_path)
    manifest = backup_ops.manifest(env, backup)  # exit 3 without a bucket, 2 for an unknown id
    backup_id = manifest["backup_id"]
    drill_id = f"drill-{started.strftime('%Y%m%dT%H%M%SZ')}-{secrets.token_hex(3)}"
    host = "127.0.0.1"
    if port is not None and (host, port) in env.source_addresses():
        raise BadInput(f"the drill target 127.0.0.1:{port} is a source endpoint of {env.name}; refusing to restore over it")
    if port is not None and supervisor.port_open(port):
        raise BadInput(f"port {port} is in use; the drill needs a free port for its scratch instance")
    port = port or supervisor.free_port()
    if (host, port) in env.source_addresses():  # a free port cannot be a running source, but be certain
        raise BadInput(f"the drill target {host}:{port} is a source endpoint of {env.name}")

    check_scratch_dir(env)

    snapshot_at = dt.datetime.fromisoformat(manifest["snapshot"]["at"])
    rpo_seconds = (started - snapshot_at).total_seconds()
    last_write = source_last_write(env, snapshot_at)
    report = new_report(env, drill_id, started, steps, spec_path, backup_id=backup_id,
                        restore_point=manifest["snapshot"]["at"], source=manifest["source"],
                        target={"name": drill_id, "host": host, "port": port, "kind": "scratch postgres"},
                        rpo_seconds=round(rpo_seconds, 1), source_last_write=last_write)
    change = Change(
        "drill.restore", f"drill {drill_id}", env.name, env.state_dir,
        {"from": backup, "backup_id": backup_id, "keep": keep, "port": port, "spec": str(spec_path)},
        [f"download backup {backup_id} ({len(manifest['files'])} files, {manifest['total_bytes']:,} bytes) and "
         "check every file's sha256 against its manifest",
         f"initdb and start a scratch PostgreSQL on {host}:{port}, registered in {env.state_dir / 'drills'}",
         "pg_restore into it; verify the schema fingerprint, per-table rows and checksums, the spec's invariants "
         f"and smoke queries ({spec_path})",
         f"measure RPO (now {rpo_seconds:.0f}s, target {report['targets']['rpo_seconds']}s) and RTO (target "
         f"{report['targets']['rto_seconds']}s); store the report in the bucket",
         "keep the scratch instance (remove it with `taly drill reap`)" if keep else "remove the scratch instance"],
        changes_environment=False,  # only its own scratch instance: a drill of prod reads prod
        before={"registry": "registered"}, after={"drill_id": drill_id, "target": report["target"]})
    if dry_run:
        return dry_run_report(report, change.plan, steps)
    confirm(change, steps)
    root = drills_dir(env) / drill_id
    register_scratch(env, drill_id, backup_id=backup_id, root=root, port=port, keep=keep)
    progress(f"drill {drill_id}: restoring backup {backup_id} (restore point {manifest['snapshot']['at']}, "
             f"RPO {rpo_seconds:.0f}s) into a scratch instance on {host}:{port}")
    target = ScratchTarget(drill_id, root, port)
    outcome = execute(
        change, lambda steps: _run(env, manifest, spec, target, report, steps),
        lambda o: teardown(env, drill_id, keep and o.interrupted is None, progress, target.spawned),
        lambda o: finish(env, report, steps=steps, interrupted=o.interrupted is not None,
                         before={"backup_id": backup_id, "restore_point": report["restore_point"]}),
        report, steps)
    outcome.reraise()
    return DrillReport.model_validate(report)


def _run(env: Environment, manifest: dict[str, Any], spec: dict[str, Any], target: ScratchTarget,
         report: dict[str, Any], steps: Steps) -> None:
    from ...adapters import postgres as pgt
    from ...local import scratch_postgres
    from ...local.context import USER

    ver = report["verification"]
    scratch = scratch_postgres.prepare(target.root, target.port)
    # 1. Download, and check every file against the manifest before anything reads it.
    download = target.root / "download"
    download.mkdir(mode=0o700)
    with steps.step("download", f"downloading {len(manifest['files'])} files ({manifest['total_bytes']:,} bytes)"):
        ver["files"], ver["files_passed"] = download_verified(env, manifest, download, steps.progress)
    if not ver["files_passed"]:
        bad = ", ".join(f"{e['file']} ({e['problem']})" for e in ver["files"] if not e["passed"])
        steps.say(f"integrity check failed: {bad}; not restoring")
        report["error"] = f"backup files do not match the manifest: {bad}"
        return

    # 2. A fresh instance, registered before it starts.
    with steps.step("instance", f"initdb and start the scratch instance {target.drill_id} on 127.0.0.1:{target.port}"):
        start_scratch(env, target.drill_id, scratch, target.spawned)
        endpoint = pgt.Endpoint("127.0.0.1", target.port, USER, scratch.password, manifest["source"]["database"],
                                "drill")
        if endpoint.address in {f"{h}:{p}" for h, p in env.source_addresses()}:
            raise BadInput(f"the drill target {endpoint.address} is a source endpoint")  # never restore over a source
        with pgt.connect(endpoint, dbname="postgres") as admin:
            pgt.create_database(admin, endpoint.database)

    # 3. Restore.
    with steps.step("restore", f"pg_restore -j 2 into {endpoint.address}/{endpoint.database}"):
        try:
            pgt.pg_restore(endpoint, download)
        except pgt.ToolFailed as exc:
            report["error"] = f"pg_restore failed: {exc.without_rows}"
            return

    # 4. Verify against the manifest and the spec.
    with steps.step("verify", "verifying schema, row counts, checksums, invariants and smoke queries"):
        with pgt.connect(endpoint) as conn:
            checks_passed = verify_database(conn, spec, ver, expected_schema=manifest["schema"],
                                            expected_tables=manifest["tables"])
        ver["passed"] = ver["files_passed"] and checks_passed
    report["rto_seconds"] = round(steps.elapsed(), 2)
    steps.say(f"verification {'passed' if ver['passed'] else 'FAILED'}; RTO {report['rto_seconds']:.1f}s")


@dataclass
class ScratchTarget:
    """Where a logical drill restores: its scratch instance's id, directory and port, and its pid once spawned."""

    drill_id: str
    root: Path
    port: int
    spawned: dict[str, Any] = field(default_factory=dict)  # should the registry miss it
