"""`taly plan`: what each stack would create, offline, from the real program under mocks."""

from __future__ import annotations

from typing import Optional

import typer

from ..errors import BadInput
from ..render import Output, column, console, emit, human, table
from ..project import project_root


def plan(
    env: Optional[str] = typer.Option(None, "--env", "-e", help="dev, staging, prod or all (the default)."),
    output: Output = typer.Option(Output.table, "--output", "-o", help="table for people, json for machines."),
    compare: Optional[tuple[str, str]] = typer.Option(
        None, "--compare", metavar="ENV ENV", help="Show the settings and resource counts that differ between two environments."
    ),
) -> None:
    """Show every resource `pulumi up` would create, without Pulumi CLI, plugins or credentials.

    The real program runs under Pulumi's mocks. JSON for one environment is
    {"environment", "resources": [{type, name, parent, inputs, ...}]}, resources in URN order, so two
    plans diff line by line; for --env all, an object keyed by environment. Secret values appear as
    "[secret]".

    Examples: taly plan --env prod; taly plan --env all -o json; taly plan --compare staging prod
    """
    from ..operations import plan as ops

    if compare:
        if env is not None:
            raise BadInput("--env and --compare do not go together: --compare names its two environments")
        a, b = ops.comparable_envs(*compare)
        root = project_root()
        typer.echo(f"planning {a} and {b}…", err=True)
        data = ops.compare(root, a, b)
        emit(output, data, _compare_table)
        return

    env = env or "all"
    envs = ops.resolve_envs(env)
    root = project_root()
    typer.echo(f"planning {', '.join(envs)}: the real program under Pulumi's mocks, charts rendered by helm…", err=True)
    results = ops.plans(root, envs)
    if output == Output.json:
        data = results[0].to_json() if env != "all" else {p.environment: p.to_json() for p in results}
    else:
        data = results
    emit(output, data, _plan_table)


def _plan_table(results) -> None:
    from ..operations.plan import summary

    out = console()
    for p in results:
        t = table(f"{p.environment}: {sum(1 for r in p.resources if r.custom)} resources")
        column(t, "component")
        column(t, "type", ident=True)
        column(t, "count", justify="right")
        for component, types in summary(p).items():
            first = True
            for typ, count in types.items():
                t.add_row(component if first else "", typ, str(count))
                first = False
            t.add_section()
        out.print(t)


def _compare_table(data) -> None:
    from rich.text import Text

    a, b = data["environments"]
    out = console()
    settings = table(f"settings that differ: {a} vs {b}")
    column(settings, "setting", ident=True)
    for env in (a, b):
        column(settings, env, overflow="fold")
    for row in data["settings"]:
        settings.add_row(row["setting"], Text(human(row[a])), Text(human(row[b])))
    out.print(settings)
    res = table("resource counts that differ")
    column(res, "type", ident=True)
    for env in (a, b):
        column(res, env, justify="right")
    for row in data["resources"]:
        res.add_row(row["type"], str(row[a]), str(row[b]))
    out.print(res)
