"""The `taly` command: a thin Typer app. Subcommands parse and render; operations decide.

Nothing heavy is imported here: boto3, kubernetes and pulumi load inside the commands
that need them, so `taly --help` stays fast.
"""

from __future__ import annotations

import os
import sys

import typer

from . import __version__
from .commands import backup as backup_cmd
from .commands import data as data_cmd
from .commands import drill as drill_cmd
from .commands import health as health_cmd
from .commands import local as local_cmd
from .commands import plan as plan_cmd
from .commands import policy as policy_cmd
from .commands import release as release_cmd
from .commands._typer import TalyTyper, error_line
from .errors import INTERNAL

app = TalyTyper(
    name="taly",
    help=("Ops CLI for the Taly platform: offline plans and the policy pack, the local estate, health, "
          "backups and restore drills, data refreshes, releases."),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"taly {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version and exit."),
) -> None:
    """Exit codes: 0 ok, 1 negative verdict, 2 bad input or configuration, 3 system unreachable,
    70 internal error, 128+n stopped by signal n (130 Ctrl-C, 143 SIGTERM; 141 the output's reader went away).
    """


app.command("plan")(plan_cmd.plan)
app.add_typer(policy_cmd.app, name="policy")
app.command("health")(health_cmd.health)
app.add_typer(local_cmd.app, name="local")
app.add_typer(backup_cmd.app, name="backup")
app.add_typer(drill_cmd.app, name="drill")
app.add_typer(data_cmd.app, name="data")
app.add_typer(release_cmd.app, name="release")


def main() -> None:
    try:
        app(standalone_mode=True)
    except KeyboardInterrupt:  # Typer turns Ctrl-C into exit 130 itself; this catches one outside its main
        typer.echo("interrupted", err=True)
        sys.exit(130)
    except Exception as exc:  # the last line of defence: no traceback reaches the user
        if os.environ.get("TALY_DEBUG"):
            raise
        error_line(f"internal error: {type(exc).__name__}: {exc}")
        typer.echo("hint: rerun with TALY_DEBUG=1 for the traceback, and report it", err=True)
        sys.exit(INTERNAL)


if __name__ == "__main__":
    main()
