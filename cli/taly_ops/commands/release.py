"""`taly release create|list|show|history`: release records in an environment's catalogue, and its ledger."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

from ..render import Output, column, console, emit, human, table
from ._typer import STATE_DIR_HELP, TalyTyper

app = TalyTyper(help="Releases: immutable records of what runs (each service's image pinned by digest, the chart "
                     "version, the configuration revision, the database schema), kept in each environment's "
                     "catalogue, and the environment's ledger of what it ran.",
                no_args_is_help=True)

ENV_HELP = ("The environment whose catalogue and ledger to use (its backups bucket): local (the local estate), dev, "
            "staging or prod (contracts/<env>.json).")
OUTPUT_HELP = "table or json."


@app.command("create")
def create(
    env: Optional[str] = typer.Option(None, "--env", "-e", help="The catalogue the release goes into (default: the "
                                                               "--from-env environment's). " + ENV_HELP),
    images: Optional[Path] = typer.Option(None, "--images", "-i", help=(
        "YAML or JSON mapping service -> image pinned by digest, <registry>/taly/<service>:<tag>@sha256:<64 hex>; "
        "every service, or with --from-env only those that change.")),
    from_env: Optional[str] = typer.Option(None, "--from-env", help=(
        "Start from the images this environment runs now (its ledger's current release).")),
    migrations: Optional[Path] = typer.Option(None, "--migrations", help=(
        "The CMS's migrations in Prisma's layout (<id>/migration.sql); default: the project's migrations/.")),
    dry_run: bool = typer.Option(False, "--dry-run", help="Validate and show the record; write nothing."),
    state_dir: Optional[Path] = typer.Option(None, "--state-dir", help=STATE_DIR_HELP),
    output: Output = typer.Option(Output.table, "--output", "-o", help=OUTPUT_HELP),
) -> None:
    """Record a release: each service's image pinned by digest, the chart version (charts/taly-service/Chart.yaml),
    the configuration revision (sha256 of the chart directory) and the database schema it needs (the last
    migration's id) with its migrations (id and sha256 of each migration.sql).

    Written once into the environment's catalogue (releases/catalogue/<id>.json in its backups bucket) with a
    conditional write: an id is never overwritten. Audited. The id sorts by time and ends in the content digest.

    \b
    Examples:
      taly release create --env dev --images images.yaml
      taly release create --from-env staging --images changed.yaml   # staging's, some images replaced
      taly release create --from-env staging --env prod --dry-run

    JSON: the record {id, created_at, created_by, based_on, images, chart, config_revision, database,
    content_digest} plus environment, location, created, dry_run. Exit 2 for bad input (a reference without a
    digest names its service), 1 when the id holds another record, 3 when the bucket cannot be reached.
    """
    from ..operations.releases import actions

    created = actions.create(actions.CreateRequest(env, images, from_env, migrations, dry_run, state_dir))
    emit(output, created.to_json(), _created)


@app.command("list")
def list_(
    env: str = typer.Option(..., "--env", "-e", help=ENV_HELP),
    limit: int = typer.Option(20, "--limit", "-n", min=0, help="The newest N releases (0: all)."),
    state_dir: Optional[Path] = typer.Option(None, "--state-dir", help=STATE_DIR_HELP),
    output: Output = typer.Option(Output.table, "--output", "-o", help=OUTPUT_HELP),
) -> None:
    """The environment's releases, oldest first, marking the one its ledger says runs now.

    A record that cannot be trusted (not JSON, edited: its content digest or id no longer match) is listed
    apart as damaged, naming the object. JSON: {environment, catalogue, current, total, releases: [record],
    damaged: [{key, reason}]}.
    """
    from ..operations.releases import actions

    emit(output, actions.listing(env, state_dir, limit or None).to_json(), _listed)


@app.command("show")
def show(
    release_id: str = typer.Argument(..., metavar="ID", help="The release id (rel-<time>-<digest>)."),
    env: str = typer.Option(..., "--env", "-e", help=ENV_HELP),
    state_dir: Optional[Path] = typer.Option(None, "--state-dir", help=STATE_DIR_HELP),
    output: Output = typer.Option(Output.table, "--output", "-o", help=OUTPUT_HELP),
) -> None:
    """One release record. Exit 2 when the catalogue has no such id, 1 when the record is damaged (named)."""
    from ..operations.releases import actions

    emit(output, actions.show(env, release_id, state_dir).to_json(), _release)


@app.command("history")
def history(
    env: str = typer.Option(..., "--env", "-e", help=ENV_HELP),
    limit: int = typer.Option(50, "--limit", "-n", min=0, help="The last N entries (0: all)."),
    state_dir: Optional[Path] = typer.Option(None, "--state-dir", help=STATE_DIR_HELP),
    output: Output = typer.Option(Output.table, "--output", "-o", help=OUTPUT_HELP),
) -> None:
    """The environment's ledger: what was promoted or rolled back, when, by whom, each gate's verdict, the
    approvals, the outcome; what runs now; who holds the promotion lock.

    Exit 1 when an entry cannot be trusted (damaged, missing from the sequence): each is named. JSON:
    {environment, ledger, current: {seq, release, since, operation, updated_at}, total_entries,
    entries: [{seq, kind, at, by, operation, ..., summary}], damaged: [{key, reason}], lock: {holder, age_seconds,
    silent_seconds, stale, damaged} or null}.
    """
    from ..operations.releases import actions

    view = actions.history(env, state_dir, limit or None)
    emit(output, view.to_json(), _history)
    if not view.intact:
        raise typer.Exit(1)


# --- rendering -----------------------------------------------------------------------------------------------

def _release(r: dict[str, Any]) -> None:
    out = console()
    db = r["database"]
    out.print(f"release {r['id']}: created {r['created_at']} by {r['created_by']}"
              + (f", based on {r['based_on']}" if r.get("based_on") else ""), highlight=False)
    out.print(f"chart {r['chart']['name']} {r['chart']['version']}; configuration {r['config_revision']}", highlight=False)
    out.print(f"database schema {human(db['schema_version'])} ({len(db['migrations'])} migrations: "
              f"{human([m['id'] for m in db['migrations']])})", highlight=False)
    t = table(f"{len(r['images'])} images")
    column(t, "service")
    column(t, "image", ident=True)
    for service, image in r["images"].items():
        t.add_row(service, image)
    out.print(t)


def _created(c: dict[str, Any]) -> None:
    _release(c)
    verb = "would be written to" if c["dry_run"] else "written to" if c["created"] else "was already in"
    console().print(f"{verb} the {c['environment']} catalogue: {c['location']}", highlight=False)


def _listed(d: dict[str, Any]) -> None:
    from rich.markup import escape

    out = console()
    if d["releases"]:
        t = table(f"{len(d['releases'])} of {d['total']} releases in {d['catalogue']}")
        for header in ("id", "created", "by", "chart", "schema", "runs now"):
            column(t, header, ident=header == "id")
        for r in d["releases"]:
            t.add_row(r["id"], r["created_at"], r["created_by"], r["chart"]["version"],
                      human(r["database"]["schema_version"]), "yes" if r["id"] == d["current"] else "")
        out.print(t)
    else:
        out.print(f"no releases in {d['catalogue']}", highlight=False)
    out.print(f"{d['environment']} runs {d['current'] or 'no recorded release'}", highlight=False)
    for x in d["damaged"]:
        out.print("[red]damaged[/red] " + escape(f"{x['key']}: {x['reason']}"), highlight=False)


def _history(d: dict[str, Any]) -> None:
    from rich.markup import escape

    out = console()
    if d["entries"]:
        t = table(f"{len(d['entries'])} of {d['total_entries']} entries in {d['ledger']}")
        for header in ("seq", "at", "by", "operation", "entry"):
            column(t, header, ident=header == "operation", justify="right" if header == "seq" else "left")
        for e in d["entries"]:
            t.add_row(str(e["seq"]), e["at"], e["by"], e["operation"], escape(e["summary"]))
        out.print(t)
    else:
        out.print(f"no entries in {d['ledger']}", highlight=False)
    current = d["current"]
    out.print(f"{d['environment']} runs " + (f"{current['release']} (since entry {current['since']})"
                                             if current and current["release"] else "no recorded release"),
              highlight=False)
    lock = d["lock"]
    if lock is None:
        out.print("lock: free", highlight=False)
    elif lock["holder"]:
        h = lock["holder"]
        out.print(escape(f"lock: held by {h['holder']} (pid {h['pid']}) for {h['operation']!r} since {h['started_at']}, "
                         f"last heartbeat {lock['silent_seconds']}s ago" + (" (stale)" if lock["stale"] else "")),
                  highlight=False)
    else:
        out.print("[red]lock damaged[/red] " + escape(str(lock["damaged"])), highlight=False)
    for x in d["damaged"]:
        out.print("[red]damaged[/red] " + escape(f"{x['key']}: {x['reason']}"), highlight=False)
