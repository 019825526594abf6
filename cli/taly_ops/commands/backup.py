"""`taly backup create|list`: logical backups into the backups bucket, and RDS snapshots in the cloud."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Any, Optional

import typer

from ..render import Output, column, console, emit
from ._typer import LOCAL_ONLY_ENV_HELP, STATE_DIR_HELP, TalyTyper, on_interrupt, progress

app = TalyTyper(help="Backups: logical (pg_dump from a consistent snapshot of the replica, with a verifiable manifest, "
                     "every environment) and RDS snapshots of the primary (dev, staging, prod).",
                no_args_is_help=True)


class Kind(str, Enum):
    logical = "logical"
    snapshot = "snapshot"


KIND_HELP = ("logical (default, every environment): pg_dump of the replica into the backups bucket with a manifest. "
             "snapshot (dev, staging, prod only: the local estate's PostgreSQL is not RDS): an RDS manual snapshot "
             "of the contract's primary, tagged taly:backup=true, taly:created-by=taly.")


@app.command("create")
def create(
    env: str = typer.Option(..., "--env", "-e", help=LOCAL_ONLY_ENV_HELP),
    kind: Kind = typer.Option(Kind.logical, "--kind", "-k", help=KIND_HELP),
    wait: bool = typer.Option(True, "--wait/--no-wait",
                              help="snapshot: wait until RDS reports it available (default), or return once requested."),
    state_dir: Optional[Path] = typer.Option(None, "--state-dir", help=STATE_DIR_HELP),
    output: Output = typer.Option(Output.table, "--output", "-o", help="table or json."),
) -> None:
    """Take a backup: a logical dump (default) or, in dev/staging/prod, an RDS snapshot of the primary.

    logical: the manifest (backups/<id>/manifest.json) holds the snapshot time, each file's sha256 and size,
    each table's row count and content checksum at the snapshot, a schema fingerprint and the tool versions.
    snapshot: JSON {kind, backup_id, snapshot_id, status, created_at, instance_id, arn, tags, ...}.
    Exit 2 for a snapshot of the local environment, 3 when the database, RDS or the bucket cannot be reached.
    """
    from ..operations import backup as ops

    snapshot = kind == Kind.snapshot
    with on_interrupt(f"the snapshot was requested and RDS keeps creating it (`taly backup list --env {env}` shows it)"
                      if snapshot else "no backup was recorded"):
        taken = ops.take(env, kind.value, wait=wait, state_dir=state_dir, progress=progress)
    emit(output, taken.to_json(), _snapshot_created if snapshot else _created)


@app.command("list")
def list_(
    env: str = typer.Option(..., "--env", "-e", help=LOCAL_ONLY_ENV_HELP),
    state_dir: Optional[Path] = typer.Option(None, "--state-dir", help=STATE_DIR_HELP),
    output: Output = typer.Option(Output.table, "--output", "-o", help="table or json."),
) -> None:
    """What can be restored: complete logical backups in the bucket, oldest first; in dev/staging/prod
    also the primary's RDS snapshots (manual and automated) and its point-in-time window.

    A backup whose manifest cannot be trusted (truncated, not JSON, missing fields) is listed apart as
    damaged, with the object and the reason; drills and refreshes refuse it, the others stay usable.
    JSON: {"backups": [{backup_id, snapshot_at, source, total_bytes, files, tables, rows}],
    "damaged": [{backup_id, key, reason}]}, plus for
    dev/staging/prod "snapshots": [{snapshot_id, type, status, created_at, ...}] and "point_in_time":
    {latest_restorable_time, earliest_restorable_time, backup_retention_days, restore_window, ...}.
    """
    from ..operations import backup as ops

    emit(output, ops.restore_points(env, state_dir).to_json(), _list_all)


def _created(m: dict[str, Any]) -> None:
    out = console()
    rows = sum(t["rows"] for t in m["tables"].values())
    out.print(f"backup {m['backup_id']}: snapshot {m['snapshot']['at']} from {m['source']['role']} "
              f"{m['source']['host']}:{m['source']['port']}; {len(m['files'])} files, {m['total_bytes']:,} bytes, "
              f"{len(m['tables'])} tables, {rows:,} rows, {m.get('duration_seconds')}s", highlight=False)


def _list(backups: list[dict[str, Any]], damaged: list[dict[str, Any]]) -> None:
    from rich.markup import escape
    from rich.table import Table

    out = console()
    if not backups:
        out.print("no intact backups" if damaged else "no backups")
    else:
        t = Table(title=f"{len(backups)} backups", title_justify="left")
        for col in ("id", "snapshot at", "source", "bytes", "tables", "rows"):
            right = col in ("bytes", "tables", "rows")
            column(t, col, justify="right" if right else "left", ident=col in ("id", "snapshot at"),
                   overflow="fold")  # a narrow terminal wraps values, never cuts them
        for b in backups:
            t.add_row(b["backup_id"], b["snapshot_at"], b["source"], f"{b['total_bytes']:,}", str(b["tables"]),
                      f"{b['rows']:,}")
        out.print(t)
    for d in damaged:  # the reason quotes the object: no markup in it
        out.print("[red]damaged[/red] " + escape(f"{d['backup_id']}: {d['key']}: {d['reason']}"), highlight=False)


def _snapshot_created(s: dict[str, Any]) -> None:
    console().print(f"RDS snapshot {s['snapshot_id']} of {s['instance_id']}: {s['status']}"
                    + (f", created {s['created_at']}" if s.get("created_at") else "")
                    + f" ({s.get('duration_seconds')}s)", highlight=False)


def _list_all(d: dict[str, Any]) -> None:
    from rich.table import Table

    _list(d["backups"], d.get("damaged", []))
    if "snapshots" not in d:
        return
    out = console()
    snaps = d["snapshots"]
    if snaps:
        t = Table(title=f"{len(snaps)} RDS snapshots of the primary", title_justify="left")
        for col in ("snapshot", "type", "status", "created at", "by taly"):
            t.add_column(col)
        for s in snaps:
            t.add_row(s["snapshot_id"], str(s["type"]), str(s["status"]), str(s["created_at"]),
                      "yes" if s["created_by_taly"] else "")
        out.print(t)
    else:
        out.print("no RDS snapshots of the primary")
    p = d["point_in_time"]
    if p["enabled"]:
        out.print(f"point in time ({p['instance_id']}, retention {p['backup_retention_days']} days): "
                  f"from {p['earliest_restorable_time'] or '?'} to {p['latest_restorable_time']}", highlight=False)
    else:
        out.print(f"no point-in-time restore for {p['instance_id']} (retention {p['backup_retention_days']} days)",
                  highlight=False)
