"""`taly data refresh`: another environment's backup, anonymised and subset, into dev or staging."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

from ..errors import VERDICT
from ..render import Output, console, emit, human
from ._typer import TalyTyper, on_interrupt, progress

app = TalyTyper(help="Data refreshes: a backup of one environment, anonymised and subset, into another.",
                no_args_is_help=True)

ENVS = "local, dev, staging or prod"


@app.command("refresh")
def refresh(
    from_: str = typer.Option(..., "--from", help=f"Source environment ({ENVS}): its backups bucket holds the backup."),
    to: str = typer.Option(..., "--to", help="Target environment (local, dev or staging; prod is always refused)."),
    anonymize: bool = typer.Option(False, "--anonymize", help="Apply the rules file (required when --from prod)."),
    subset: Optional[float] = typer.Option(None, "--subset", metavar="PERCENT",
                                           help="Keep PERCENT of the tenants (and every row they reference). "
                                                "Default: the rules file's subset.default_percent for the target "
                                                "(dev: 10), else everything."),
    rules: Optional[Path] = typer.Option(None, "--rules", metavar="FILE",
                                         help="Anonymisation rules (default runbooks/data/anonymize.yaml)."),
    backup: str = typer.Option("latest", "--backup", metavar="ID",
                               help="A backup id from `taly backup list --env <from>` (default: the latest)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Resolve and check everything, show what would happen, "
                                                          "change nothing."),
    state_dir: Optional[Path] = typer.Option(None, "--state-dir",
                                             help="The local estate's state directory, when --from or --to is local "
                                                  "(default $TALY_LOCAL_STATE, else .taly/local); dev/staging/prod "
                                                  "keep theirs in $TALY_STATE_DIR/<env>, else .taly/<env>."),
    output: Output = typer.Option(Output.table, "--output", "-o", help="table or json."),
) -> None:
    """Refresh the target's database from the source's latest (or --backup) logical backup.

    The backup is restored into a scratch PostgreSQL on this machine, never onto the target: there
    it is subset (whole tenants), anonymised by the rules file (deterministic fake e-mails, names and
    phones; free text and JSON scrubbed; payment details removed), checked (foreign keys, the drill
    spec's invariants) and scanned for e-mails, phone numbers and card numbers in every text and JSON
    column. Only a clean copy is restored, into a new database <db>_refresh_<id> on the target's
    primary; it is scanned again and then swapped in: sessions on <db> are terminated, <db> becomes
    <db>_before_refresh (an older one is dropped) and the new database becomes <db>.

    Refused (exit 2): --to prod; --from and --to the same; --from prod without --anonymize; a target
    whose primary is an endpoint of the source; a malformed rules file, or one naming a table or
    column the backup does not have; an unknown backup id. Exit 1: personal data found or a check
    failed (the target is untouched); exit 3: a bucket or database unreachable. Both environments'
    audit entries go to the target's state directory; the scratch instance is always removed
    (`taly drill reap --env <to>` removes what a killed refresh left).

    \b
    Examples:
      taly data refresh --from prod --to staging --anonymize
      taly data refresh --from prod --to dev --anonymize --subset 5 --dry-run
      taly data refresh --from staging --to dev --backup 20260101T020000Z-1a2b3c -o json

    JSON: {refresh_id, status (ok|failed|dry-run), from, to, backup_id, anonymized,
    subset: {percent, tenants_kept, tenants_referenced, tenants_total} | null,
    tables: {<table>: {rows_before, rows_after}}, anonymization: [{table, column, strategy, rows_changed}],
    verification, pii_scan: {passed, findings: [{table, column, pattern, rows, matches, row_keys}]},
    target, swapped, previous_database, timings, cleanup, error}.
    """
    from ..operations import refresh as ops

    with on_interrupt("the scratch instance was removed and the target left as it was"):
        report = ops.refresh(ops.RefreshRequest(from_, to, anonymize=anonymize, subset=subset, rules_path=rules,
                                                backup=backup, dry_run=dry_run), state_dir=state_dir, progress=progress)
    emit(output, report.to_json(), _render)
    if report.status == "failed":
        raise typer.Exit(VERDICT)


def _render(r: dict[str, Any]) -> None:
    from rich.table import Table

    out = console()
    t = r["target"]
    colour = {"ok": "green", "failed": "red"}.get(r["status"], "yellow")
    out.print(f"[{colour}]{r['status'].upper()}[/{colour}] {r['refresh_id']}: {r['from']} backup {r['backup_id']} "
              f"(restore point {r['restore_point']}) -> {r['to']} {t['host']}:{t['port']}/{t['database']}",
              highlight=False)
    if r["subset"]:
        s = r["subset"]
        extra = f", {s['tenants_referenced']} more referenced" if s.get("tenants_referenced") else ""
        out.print(f"subset: {s['tenants_kept']} of {s['tenants_total']} tenants ({s['percent']:g} %){extra}",
                  highlight=False)
    else:
        out.print("subset: none (every tenant)", highlight=False)
    out.print(f"anonymised: {'yes, by ' + r['rules']['file'] if r['anonymized'] else 'no'}"
              + (f" (key: {r['rules']['key_source']})" if r["rules"].get("key_source") else ""), highlight=False)
    if r["status"] == "dry-run":
        cols = Table(title="rules", title_justify="left")
        for c in ("table", "column", "strategy"):
            cols.add_column(c)
        for c in r["rules"]["columns"]:
            cols.add_row(c["table"], c["column"], c["strategy"])
        if r["rules"]["columns"]:
            out.print(cols)
        out.print("would:", highlight=False)
        for i, step in enumerate(r["would"], 1):
            out.print(f"  {i}. {step}", highlight=False)
        return
    rows = Table(title="tables (rows after: in the target; - when it was not refreshed)", title_justify="left")
    for c in ("table", "rows before", "rows after"):
        rows.add_column(c, justify="left" if c == "table" else "right")
    for name, v in r["tables"].items():
        rows.add_row(name, *("-" if v.get(k) is None else f"{v[k]:,}" for k in ("rows_before", "rows_after")))
    out.print(rows)
    if r["anonymization"]:
        an = Table(title="anonymised", title_justify="left")
        for c in ("table", "column", "strategy", "rows changed"):
            an.add_column(c, justify="right" if c == "rows changed" else "left")
        for a in r["anonymization"]:
            an.add_row(a["table"], a["column"], a["strategy"], f"{a['rows_changed']:,}")
        out.print(an)
    scan = r["pii_scan"]
    if scan["passed"] is None:
        out.print("PII scan: not run", highlight=False)
    elif scan["passed"]:
        n = (scan.get("scratch") or {}).get("columns_scanned")
        out.print(f"[green]PII scan passed[/green]: {n} columns, in the scratch copy and on the target", highlight=False)
    else:
        f = Table(title="[red]personal data found[/red] (values are never shown)", title_justify="left")
        for c in ("table", "column", "pattern", "rows", "row keys"):
            f.add_column(c)
        for x in scan["findings"]:
            f.add_row(x["table"], x["column"], x["pattern"], str(x["rows"]), ", ".join(x["row_keys"]))
        out.print(f)
    if r["swapped"]:
        out.print(f"swapped: {t['database']} is the refreshed data"
                  + (f"; the previous data is in {r['previous_database']}" if r["previous_database"] else ""),
                  highlight=False)
    else:
        out.print(f"not swapped: {t['database']} on {r['to']} is as it was", highlight=False)
    if r.get("error"):
        out.print(f"[red]error:[/red] {r['error']}", highlight=False)
    if r["timings"]:
        out.print("timings: " + ", ".join(f"{k.removesuffix('_seconds').replace('_', ' ')} {human(v)}s"
                                          for k, v in r["timings"].items()), highlight=False)
