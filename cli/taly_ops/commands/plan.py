"""`taly plan`: what each stack would create, offline, from the real program under mocks."""

from __future__ import annotations

from typing import Optional

import typer

from ..errors import BadInput
from ..render import Output, console, emit
from ..project import project_root


def plan(
    env: str = typer.Option("all", "--env", "-e", help="dev, staging, prod or all."),
    output: Output = typer.Option(Output.table, "--output", "-o", help="table for people, json for machines."),
    compare: Optional[tuple[str, str]] = typer.Option(
        None, "--compare", metavar="ENV ENV", help="Show the settings and resource counts that differ between two environments."
    ),
) -> None:
    """Show every resource `pulumi up` would create, without Pulumi CLI, plugins or credentials.

    The real program runs under Pulumi's mocks. JSON for one environment is
    {"environment", "resources": [{type, name, parent, inputs, ...}]}; for --env all,
    an object keyed by environment. Secret values appear as "[secret]".

    Examples: taly plan --env prod; taly plan --env all -o json; taly plan --compare staging prod
    """
    from ..operations import plan as ops

    root = project_root()
    if compare:
        a, b = compare
        for e in (a, b):
            if e == "all":
                raise BadInput("--compare takes two environment names, not 'all'")
            ops.resolve_envs(e)
        typer.echo(f"planning {a} and {b}…", err=True)
        pa, pb = ops.plans(root, [a, b])
        data = {"environments": [a, b], "settings": ops.compare_settings(pa.config, pb.config),
                "resources": ops.compare_resources(pa, pb)}
        emit(output, data, _compare_table)
        return

    envs = ops.resolve_envs(env)
    typer.echo(f"planning {', '.join(envs)}: the real program under Pulumi's mocks, charts rendered by helm…", err=True)
    results = ops.plans(root, envs)
    if output == Output.json:
        data = results[0].to_json() if env != "all" else {p.environment: p.to_json() for p in results}
    else:
        data = results
    emit(output, data, _plan_table)


def _plan_table(results) -> None:
    from rich.table import Table

    from ..operations.plan import summary

    out = console()
    for p in results:
        table = Table(title=f"{p.environment}: {sum(1 for r in p.resources if r.custom)} resources", title_justify="left")
        table.add_column("component")
        table.add_column("type")
        table.add_column("count", justify="right")
        for component, types in summary(p).items():
            first = True
            for typ, count in types.items():
                table.add_row(component if first else "", typ, str(count))
                first = False
            table.add_section()
        out.print(table)


def _compare_table(data) -> None:
    from rich.table import Table

    a, b = data["environments"]
    out = console()
    settings = Table(title=f"settings that differ: {a} vs {b}", title_justify="left")
    for col in ("setting", a, b):
        settings.add_column(col)
    for row in data["settings"]:
        settings.add_row(row["setting"], str(row[a]), str(row[b]))
    out.print(settings)
    res = Table(title="resource counts that differ", title_justify="left")
    for col in ("type", a, b):
        res.add_column(col, justify="left" if col == "type" else "right")
    for row in data["resources"]:
        res.add_row(row["type"], str(row[a]), str(row[b]))
    out.print(res)
