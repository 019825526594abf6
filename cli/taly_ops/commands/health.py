"""`taly health`: the one verdict on an environment (parse, call the operation, render)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, List, Optional

import typer

from ..render import Output, console, emit_json

STATUS_STYLE = {"ok": "green", "warn": "yellow", "unknown": "magenta", "fail": "bold red"}


def health(
    env: str = typer.Option(..., "--env", "-e", help="local, dev, staging or prod."),
    component: Optional[List[str]] = typer.Option(
        None, "--component", "-c", metavar="NAME",
        help="Only these components (repeat, or comma-separate): postgres, redis, rabbitmq, s3, aws, kubernetes, slo."),
    output: Output = typer.Option(Output.table, "--output", "-o", help="table for people, json for machines."),
    strict: bool = typer.Option(False, "--strict", help="Warnings fail too (exit 1)."),
    watch: Optional[float] = typer.Option(
        None, "--watch", metavar="SECONDS", help="Run again every SECONDS until Ctrl-C (JSON: one line per run)."),
    thresholds: Optional[Path] = typer.Option(
        None, "--thresholds", metavar="FILE", help="Thresholds file (default: health.yaml in the project root, if any)."),
    timeout: Optional[float] = typer.Option(
        None, "--timeout", metavar="SECONDS", help="Every check's timeout (default per component: 3 s, AWS 6 s, SLO 4 s)."),
    state_dir: Optional[Path] = typer.Option(
        None, "--state-dir", help="--env local: the estate's state directory (default $TALY_LOCAL_STATE, else .taly/local)."),
) -> None:
    """Check an environment's PostgreSQL, Redis, RabbitMQ, S3, AWS control plane, Kubernetes and SLOs at once.

    Every check runs concurrently with its own timeout. A status per check: ok, warn, unknown (could not be
    measured: no data, no answer from a non-liveness check) or fail (a liveness check that times out fails).
    The environment's status is the worst: fail > unknown > warn > ok.

    Exit 0 healthy (warnings allowed unless --strict), 1 a check failed (or warned, with --strict),
    3 no failure but a component gave no verdict at all (every check of it unknown: unreachable),
    2 bad input (unknown environment or component, missing contract or local estate).

    `local` reads the local estate (`taly local up`); dev, staging and prod read contracts/<env>.json,
    written by `pulumi stack output --stack <env> --json > contracts/<env>.json`.

    JSON: {"environment", "status", "exit_code", "summary", "checks": [{component, name, status,
    observed, threshold, detail, duration_ms}], ...}. No secret is ever printed.
    """
    from ..environment import LOCAL, check_name
    from ..operations import health as ops
    from ..project import project_root

    check_name(env)
    components = ops.resolve_components(component)
    root = _root_or_none(project_root) if env == LOCAL else project_root()
    limits = ops.load_thresholds(thresholds, root, timeout)

    def run():
        return ops.check(env, components, limits, root=root, state_dir=state_dir, strict=strict)

    if watch is None:
        report = run()
        if output == Output.json:
            emit_json(report.to_json())
        else:
            render_table(report)
        raise typer.Exit(report.exit_code)

    def show(report) -> None:
        if output == Output.json:
            sys.stdout.write(json.dumps(report.to_json(), default=str) + "\n")
            sys.stdout.flush()
        else:
            out = console()
            out.clear()
            render_table(report)
            out.print(f"every {watch:g} s; Ctrl-C to stop", style="dim", highlight=False)

    raise typer.Exit(ops.watch(run, watch, show))


def _root_or_none(find):
    """The project root if there is one: `--env local` works outside the repository too."""
    from ..errors import BadInput

    try:
        return find()
    except BadInput:
        return None


COLUMNS = (("component", None), ("check", 2), ("status", None), ("observed", 2), ("threshold", 2), ("detail", 5),
           ("ms", None))


def column_widths(width: int, rows: list[list[str]]) -> list[int]:
    """Each column's width on a console `width` wide: the short columns as wide as their widest value, the
    others sharing the rest by their ratio, but never narrower than their header's longest word.

    (Rich's own ratio columns ignore `min_width`: "threshold" came out as "thresho/ld" at 80 columns.)
    """
    fixed = {i: max([len(name)] + [len(r[i]) for r in rows]) for i, (name, ratio) in enumerate(COLUMNS) if not ratio}
    flexible = width - (3 * len(COLUMNS) + 1) - sum(fixed.values())  # each cell's padding and the borders
    parts = sum(ratio for _, ratio in COLUMNS if ratio)
    least = {i: len(max(name.split(), key=len)) for i, (name, ratio) in enumerate(COLUMNS) if ratio}
    widths = {i: max(least[i], flexible * COLUMNS[i][1] // parts) for i in least}
    while sum(widths.values()) > flexible and any(widths[i] > least[i] for i in widths):
        roomiest = max(widths, key=lambda i: widths[i] - least[i])  # give back what the minimums took
        widths[roomiest] -= 1
    return [fixed[i] if i in fixed else widths[i] for i in range(len(COLUMNS))]


def render_table(report) -> None:
    from rich.text import Text

    from ..render import column, table as make_table

    data: dict[str, Any] = report.to_json()
    counts = ", ".join(f"{n} {s}" for s, n in data["summary"].items() if n)
    style = STATUS_STYLE[data["status"]]
    title = (f"{data['environment']}: [{style}]{data['status'].upper()}[/{style}] ({counts or 'no checks'}) "
             f"in {data['duration_ms']} ms, exit {data['exit_code']}")
    rows = [[c["component"], c["name"], c["status"], c["observed"] or "", c["threshold"] or "", c["detail"],
             str(c["duration_ms"])] for c in data["checks"]]
    out = console()
    table = make_table(title)
    for (name, ratio), width in zip(COLUMNS, column_widths(out.width, rows)):
        column(table, name, width=width, overflow="fold", justify="right" if name == "ms" else "left",
               no_wrap=ratio is None)
    for row in rows:
        cells = [Text(v) for v in row]
        cells[2].stylize(STATUS_STYLE[row[2]])
        table.add_row(*cells)
    out.print(table)
