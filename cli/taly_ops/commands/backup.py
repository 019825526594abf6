"""`taly backup create|list`: logical backups of an environment's database into its backups bucket."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

from ..render import Output, console, emit
from ._typer import LOCAL_ONLY_ENV_HELP, STATE_DIR_HELP, TalyTyper, progress

app = TalyTyper(help="Logical backups (pg_dump from a consistent snapshot of the replica) with a verifiable manifest.",
                no_args_is_help=True)



@app.command("create")
def create(
    env: str = typer.Option(..., "--env", "-e", help=LOCAL_ONLY_ENV_HELP),
    state_dir: Optional[Path] = typer.Option(None, "--state-dir", help=STATE_DIR_HELP),
    output: Output = typer.Option(Output.table, "--output", "-o", help="table or json."),
) -> None:
    """Dump the database (from the replica when there is one) and upload it with its manifest.

    The manifest (backups/<id>/manifest.json) holds the snapshot time, each file's sha256 and size, each
    table's row count and content checksum at the snapshot, a schema fingerprint and the tool versions.
    Exit 3 when the database or the backups bucket cannot be reached.
    """
    from ..operations import backup as ops

    from ..operations.drill import Interrupted

    try:
        manifest = ops.create(ops.resolve(env, state_dir), progress=progress)
    except Interrupted as exc:
        typer.echo(f"interrupted by {exc}: no backup was recorded", err=True)
        raise typer.Exit(128 + exc.signum) from None
    emit(output, manifest, _created)


@app.command("list")
def list_(
    env: str = typer.Option(..., "--env", "-e", help=LOCAL_ONLY_ENV_HELP),
    state_dir: Optional[Path] = typer.Option(None, "--state-dir", help=STATE_DIR_HELP),
    output: Output = typer.Option(Output.table, "--output", "-o", help="table or json."),
) -> None:
    """Complete backups in the environment's bucket, oldest first.

    JSON: {"backups": [{backup_id, snapshot_at, source, total_bytes, files, tables, rows}]}.
    """
    from ..operations import backup as ops

    backups = ops.list_backups(ops.resolve(env, state_dir))
    emit(output, {"backups": backups}, lambda d: _list(d["backups"]))


def _created(m: dict[str, Any]) -> None:
    out = console()
    rows = sum(t["rows"] for t in m["tables"].values())
    out.print(f"backup {m['backup_id']}: snapshot {m['snapshot']['at']} from {m['source']['role']} "
              f"{m['source']['host']}:{m['source']['port']}; {len(m['files'])} files, {m['total_bytes']:,} bytes, "
              f"{len(m['tables'])} tables, {rows:,} rows, {m.get('duration_seconds')}s", highlight=False)


def _list(backups: list[dict[str, Any]]) -> None:
    from rich.table import Table

    if not backups:
        console().print("no backups")
        return
    t = Table(title=f"{len(backups)} backups", title_justify="left")
    for col in ("id", "snapshot at", "source", "bytes", "tables", "rows"):
        t.add_column(col, justify="right" if col in ("bytes", "tables", "rows") else "left")
    for b in backups:
        t.add_row(b["backup_id"], b["snapshot_at"], b["source"], f"{b['total_bytes']:,}", str(b["tables"]), f"{b['rows']:,}")
    console().print(t)
