"""`taly policy`: the policy pack over the offline plan (the same rules run in `pulumi preview`)."""

from __future__ import annotations

import typer

from ..errors import VERDICT
from ..render import Output, column, console, emit, table
from ._typer import TalyTyper

app = TalyTyper(help="Policy rules over the offline plan: encryption, exposure, HA, protection, Kubernetes hygiene.",
                no_args_is_help=True)


@app.command("list")
def list_rules(output: Output = typer.Option(Output.table, "--output", "-o", help="table or json.")) -> None:
    """List every rule with its severity (mandatory fails the check; advisory only reports) and rationale."""
    from ..operations import policy as ops

    rules = ops.rules()

    def rules_table(rows) -> None:
        t = table(f"{len(rows)} policy rules")
        for col in ("id", "severity", "description", "rationale"):
            column(t, col, ident=col == "id", overflow="fold")
        for r in rows:
            t.add_row(r["id"], r["severity"], r["description"], r["rationale"])
        console().print(t)

    emit(output, {"rules": rules}, lambda d: rules_table(d["rules"]))


@app.command("check")
def check(
    env: str = typer.Option("all", "--env", "-e", help="dev, staging, prod or all."),
    output: Output = typer.Option(Output.table, "--output", "-o", help="table or json."),
) -> None:
    """Evaluate every rule over the offline plan. Exit 0 when no mandatory rule fails, 1 when one does.

    Exemptions come from `taly:policy.exemptions` in the stack file, each with a reason shown here.
    JSON: {"environment", "passed", "summary", "results": [{id, severity, status, violations, exemption}]}
    (an object keyed by environment for --env all).
    """
    from ..operations import plan as plan_ops
    from ..operations import policy as ops

    envs = plan_ops.resolve_envs(env)
    reports = ops.check(_root(), envs)
    data = reports[0].to_json() if env != "all" else {r.environment: r.to_json() for r in reports}
    emit(output, data, lambda _: _table(reports))
    if not all(r.passed for r in reports):
        raise typer.Exit(VERDICT)


def _root():
    from ..project import project_root

    return project_root()


def _table(reports) -> None:
    out = console()
    for rep in reports:
        t = table(f"{rep.environment}: {'PASSED' if rep.passed else 'FAILED'}")
        for col in ("rule", "severity", "status", "detail"):
            column(t, col, ident=col == "rule", overflow="fold")
        for r in sorted(rep.results, key=lambda r: (r.status != "fail", r.status != "exempt", r.id)):
            style = {"fail": "red", "exempt": "yellow", "pass": "green"}[r.status]
            if r.status == "exempt":
                detail = f"exempt: {r.exemption}"
            else:
                detail = "; ".join(f"{v.resource}: {v.message}" for v in r.violations[:5])
                if len(r.violations) > 5:
                    detail += f" (+{len(r.violations) - 5} more)"
            t.add_row(r.id, r.severity, f"[{style}]{r.status}[/{style}]", detail)
        out.print(t)
