"""`taly drill restore|reap|history`: restore drills measured against the RPO and RTO targets."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

from ..errors import VERDICT
from ..render import Output, column, console, emit, human
from ._typer import LOCAL_ONLY_ENV_HELP, STATE_DIR_HELP, TalyTyper, on_interrupt, progress

app = TalyTyper(help="Restore drills: a backup restored into a scratch instance, verified, timed and torn down. "
                     "Logical backups restore into a scratch PostgreSQL on this machine (every environment); "
                     "RDS snapshots and point-in-time restores into a scratch RDS instance (dev, staging, prod).",
                no_args_is_help=True)

FROM_HELP = ("What to restore. Logical (every environment; into a scratch PostgreSQL on this machine): latest "
             "(default) or a backup id from `taly backup list` (backup ids begin with a digit). RDS (dev, staging, "
             "prod; into a scratch RDS instance in the contract's drill-only security group): snapshot (the primary's "
             "latest available snapshot), pitr (its latest restorable time), or an RDS snapshot id (they begin with "
             "a letter).")


@app.command("restore")
def restore(
    env: str = typer.Option(..., "--env", "-e", help=LOCAL_ONLY_ENV_HELP),
    from_: str = typer.Option("latest", "--from", help=FROM_HELP),
    keep: bool = typer.Option(False, "--keep", help="Keep the scratch instance (PostgreSQL or RDS; remove it later "
                                                     "with `taly drill reap`)."),
    port: Optional[int] = typer.Option(None, "--port", min=1024, max=65535,
                                       help="Logical drills: the scratch PostgreSQL's port, 1024-65535 (default: a "
                                            "free one)."),
    wait_minutes: float = typer.Option(120, "--wait-minutes", min=1,
                                       help="RDS drills: how long the restored instance may take to become available."),
    spec: Optional[Path] = typer.Option(None, "--spec", help="Drill spec (default runbooks/drills/cms.yaml)."),
    junit: Optional[Path] = typer.Option(None, "--junit", help="Also write the verification as JUnit XML here "
                                                               "(missing directories are created; stderr names the "
                                                               "file)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Resolve and check everything (the backup or restore "
                                                          "point, the port, the spec, the scratch directory) and "
                                                          "say what the drill would do; start nothing."),
    state_dir: Optional[Path] = typer.Option(None, "--state-dir", help=STATE_DIR_HELP),
    output: Output = typer.Option(Output.table, "--output", "-o", help="table or json."),
) -> None:
    """Restore a backup into a fresh scratch instance, verify it and measure RPO and RTO.

    Logical: verifies file checksums, the schema fingerprint, per-table row counts and content checksums
    against the backup's manifest, then the spec's invariants and smoke queries. RDS (snapshot, pitr, a
    snapshot id): restores into taly-drill-<env>-<time>-<hex> (private, single-AZ, the drill security
    group), then checks the schema against the source replica's and runs the invariants and smoke queries
    on it; that needs a network path to the restored instance (run it from the ops runner in the VPC).
    The scratch instance is deleted on success, failure, SIGTERM and Ctrl-C, unless --keep. The report
    goes to drills/<drill_id>.json in the backups bucket. Exit 0 passed, 1 failed (verification or
    targets), 2 bad input (unknown backup or snapshot, a target that is a source, no snapshot), 3
    unreachable (no backups bucket, RDS not answering).
    """
    from ..operations import drills

    with on_interrupt(_interrupted_drill):
        request = drills.DrillRequest(from_, keep=keep, port=port, spec_path=spec, wait_minutes=wait_minutes,
                                      dry_run=dry_run)
        report = drills.restore_from(env, request, state_dir=state_dir, progress=progress)
    data = report.to_json()
    if junit is not None and dry_run:
        progress(f"no JUnit XML written to {junit.absolute()}: a dry run verifies nothing")
    elif junit is not None:
        from ..junit import junit_xml

        where = junit.absolute()
        created = not where.parent.exists()
        where.parent.mkdir(parents=True, exist_ok=True)
        where.write_bytes(junit_xml(data))
        progress(f"JUnit XML written to {where}" + (f" (created {where.parent})" if created else ""))
    emit(output, data, _report)
    if report.status == "failed":
        raise typer.Exit(VERDICT)


def _interrupted_drill(exc) -> str:
    left = (getattr(exc, "cleanup", None) or {}).get("error")  # RDS drills: what the teardown could not do
    return f"the scratch instance may be left: {left}" if left else "the scratch instance was torn down"


@app.command("reap")
def reap(
    env: str = typer.Option(..., "--env", "-e", help=LOCAL_ONLY_ENV_HELP),
    older_than: float = typer.Option(0.0, "--older-than", min=0, help="Only drills started more than HOURS ago."),
    force: bool = typer.Option(False, "--force", help=(
        # 3 h: drills.rds_reap.OTHER_HOST_DRILL_HOURS (not imported here: the CLI imports operations lazily).
        "dev/staging/prod: also delete RDS scratch instances of drills started on another host less than "
        "3 h ago (the longest a drill may still be running). Their owner cannot be "
        "checked from this host, so without --force they are skipped. Drills running on this host are never "
        "touched; logical drills ignore --force.")),
    state_dir: Optional[Path] = typer.Option(None, "--state-dir", help=STATE_DIR_HELP),
    output: Output = typer.Option(Output.table, "--output", "-o", help="table or json."),
) -> None:
    """Remove scratch instances that drills left behind (killed, or run with --keep).

    Every environment: scratch PostgreSQL instances of logical drills on this machine (for local, whether
    or not the estate runs: the drill registry is all it needs). dev/staging/prod
    also: RDS instances tagged taly:drill=true and named taly-drill-<env>-* (deleted without a final
    snapshot), except those of a drill still running on this host, and (unless --force) those of a
    drill started on another host less than 3 h ago. An unreadable taly:started-at tag counts as old
    enough; the entry's warning names it.
    JSON: {"reaped": [{drill_id, port, dir, instance_was_running, ...; RDS: kind "rds", instance_id,
    status, deleted, warning?}], "skipped": [{drill_id, reason}], "unregistered_dirs": [...]}.
    """
    from ..operations import drills

    result = drills.reap_environment(env, state_dir, older_than_hours=older_than, force=force, progress=progress)
    emit(output, result, _reaped)


@app.command("history")
def history(
    env: str = typer.Option(..., "--env", "-e", help=LOCAL_ONLY_ENV_HELP),
    state_dir: Optional[Path] = typer.Option(None, "--state-dir", help=STATE_DIR_HELP),
    output: Output = typer.Option(Output.table, "--output", "-o", help="table or json."),
) -> None:
    """Past drills, from the reports stored in the backups bucket (drills/*.json), oldest first."""
    from ..environment import resolve
    from ..operations import drills

    past = drills.history(resolve(env, state_dir))
    emit(output, {"drills": past}, lambda d: _history(d["drills"]))


def _report(r: dict[str, Any]) -> None:
    from rich.table import Table

    out = console()
    ver, tg = r["verification"], r["targets"]
    colour = "green" if r["status"] == "passed" else "red"
    kind = r.get("restore_point_kind", "logical")
    what = {"snapshot": f"RDS snapshot {r.get('snapshot_id')}", "pitr": "RDS point in time"}.get(kind,
                                                                                             f"backup {r['backup_id']}")
    if r["status"] == "dry-run":
        out.print(f"DRY RUN {r['drill_id']} would restore {what} (restore point {r['restore_point']}):",
                  highlight=False)
        for step in r.get("would", []):
            out.print(f"  - {step}", highlight=False)
        return
    out.print(f"[{colour}]{r['status'].upper()}[/{colour}] {r['drill_id']} restored {what} "
              f"(restore point {r['restore_point']})", highlight=False)
    out.print(f"{_target_line('RPO', r['rpo_seconds'], tg['rpo_seconds'], tg['rpo_met'])};  "
              f"{_target_line('RTO', r['rto_seconds'], tg['rto_seconds'], tg['rto_met'])}", highlight=False)
    last = r.get("source_last_write") or {}
    if last.get("missed_seconds") is not None:
        when = f"last wrote at {last['at']}" if last.get("at") else last.get("how")
        out.print(f"source {last['endpoint']}: {when}; a restore of this backup now would miss "
                  f"{last['missed_seconds']}s of writes", highlight=False)
    elif last.get("error") or last.get("how"):
        out.print(f"source's last write unknown: {last.get('error') or last.get('how')}", highlight=False)
    bad_files = [f for f in ver["files"] if not f["passed"]]
    if bad_files:
        out.print("files failing their checksum: " + ", ".join(f"{f['file']} ({f['problem']})" for f in bad_files),
                  highlight=False)
    if ver["tables"]:
        t = Table(title=f"schema {'ok' if ver['schema_passed'] else 'DIFFERS'}", title_justify="left")
        for col in ("table", "rows", "expected", "checksum", "ok"):
            t.add_column(col, justify="right" if col in ("rows", "expected") else "left")
        for row in ver["tables"]:
            t.add_row(row["table"], str(row["rows"]), str(row["expected_rows"]),
                      "equal" if row["checksum"] == row["expected_checksum"] else "DIFFERS",
                      "[green]yes[/green]" if row["passed"] else "[red]no[/red]")
        out.print(t)
    for i in ver["invariants"] + ver["smoke"]:
        mark = "[green]ok[/green]" if i["passed"] else "[red]FAIL[/red]"
        out.print(f"{mark} {i['name']}" + (f": {i['error']}" if i.get("error") else ""), highlight=False)
    if r.get("error"):
        out.print(f"[red]error:[/red] {r['error']}", highlight=False)
    c = r["cleanup"]
    # instance_existed None: not known (the teardown failed, or the instance never showed): not "removed".
    removed = (c.get("deleted") or c.get("instance_existed") is False) if kind != "logical" else c.get("dir_removed")
    if c.get("kept"):
        out.print("scratch instance kept; remove it with " + c.get("remove_with", "`taly drill reap`"), highlight=False)
    elif removed:
        out.print("scratch instance removed", highlight=False)
    else:
        out.print("[red]scratch instance NOT removed[/red]" + (f": {c['error']}" if c.get("error") else "")
                  + (f"; remove it with {c['remove_with']}" if c.get("remove_with") else ""), highlight=False)
    if r["timings"]:
        out.print("timings: " + ", ".join(f"{k.removesuffix('_seconds').replace('_', ' ')} {v:g}s"
                                          for k, v in r["timings"].items()), highlight=False)


def _target_line(what: str, seconds: float | None, target: float, met: bool | None) -> str:
    """RPO 12.3s (target 3600s, met); a check that never ran says so instead of showing a None."""
    if seconds is None:
        return f"{what} not measured (the drill stopped before a verified restore; target {target:g}s)"
    return f"{what} {seconds:g}s (target {target:g}s, {'met' if met else 'MISSED'})"


def _seconds(value: float | None) -> str:
    return human(value)


def _reaped(d: dict[str, Any]) -> None:
    out = console()
    if not d["reaped"]:
        out.print("nothing to reap")
    for r in d["reaped"]:
        if r.get("kind") == "rds":
            out.print(f"reaped RDS instance {r['instance_id']} (was {r['status']}, now {r.get('status_after')})"
                      + (f"; warning: {r['warning']}" if r.get("warning") else ""), highlight=False)
            continue
        out.print(f"reaped {r['drill_id']} (port {r['port']}, instance was {'running' if r['instance_was_running'] else 'stopped'})",
                  highlight=False)
    for s in d["skipped"]:
        out.print(f"skipped {s['drill_id']}: {s['reason']}" + (f" (warning: {s['warning']})" if s.get("warning") else ""),
                  highlight=False)
    for p in d["unregistered_dirs"]:
        out.print(f"not in the registry (remove by hand if no drill runs): {p}", highlight=False)


def _history(drills: list[dict[str, Any]]) -> None:
    from rich.table import Table

    if not drills:
        console().print("no drills")
        return
    t = Table(title=f"{len(drills)} drills", title_justify="left")
    for col in ("drill", "kind", "restored", "status", "RPO s", "RTO s"):
        column(t, col, ident=col in ("drill", "restored"), justify="right" if col.endswith(" s") else "left",
               overflow="fold")  # a narrow terminal wraps values, never cuts them
    for d in drills:
        colour = "green" if d["status"] == "passed" else "red"
        t.add_row(d["drill_id"], d.get("restore_point_kind") or "logical",
                  str(d["backup_id"] or d.get("restore_point") or "-"), f"[{colour}]{d['status']}[/{colour}]",
                  _seconds(d["rpo_seconds"]), _seconds(d["rto_seconds"]))
    console().print(t)
