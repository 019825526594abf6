"""What every taly command group shares: the guarded Typer class, progress on stderr, common help."""

from __future__ import annotations

import functools
from typing import Any, Callable

import typer

from ..errors import TalyError


def guarded(command: Callable[..., Any]) -> Callable[..., Any]:
    """Turn TalyError into one line on stderr and its exit code (also under CliRunner)."""

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except TalyError as exc:
            typer.secho(f"error: {exc.message}", err=True, fg="red")
            if exc.hint:
                typer.echo(f"hint: {exc.hint}", err=True)
            raise typer.Exit(exc.exit_code) from None

    return run


LOCAL_ONLY_ENV_HELP = ("Environment: local (the local estate), or dev, staging, prod (read from contracts/<env>.json, "
                       "credentials from Secrets Manager).")
STATE_DIR_HELP = ("Where the audit log and drill registry live: for local the estate's state directory "
                  "(default $TALY_LOCAL_STATE, else .taly/local); for dev/staging/prod $TALY_STATE_DIR/<env>, "
                  "else .taly/<env>.")


def progress(line: str) -> None:
    """Progress of long work goes to stderr, so stdout stays clean for --output json."""
    typer.echo(line, err=True)


class TalyTyper(typer.Typer):
    """`typer.Typer` whose commands are all guarded; use it for every command group."""

    def command(self, *args: Any, **kwargs: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        register = super().command(*args, **kwargs)
        return lambda fn: register(guarded(fn))
