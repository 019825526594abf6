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


def reflow(doc: str | None) -> str | None:
    """A docstring as help: each prose paragraph on one line, so the terminal wraps it at its own width.

    Source lines are wrapped for the editor; Typer would print those breaks as they are. A paragraph
    with an indented line (examples, a list) keeps its lines.
    """
    if not doc:
        return doc
    import inspect

    paragraphs = inspect.cleandoc(doc).split("\n\n")
    return "\n\n".join(p if any(line.startswith(" ") for line in p.splitlines()) else " ".join(p.split("\n"))
                       for p in paragraphs)


class TalyTyper(typer.Typer):
    """`typer.Typer` whose commands are all guarded, with reflowed help; use it for every command group."""

    def command(self, *args: Any, **kwargs: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        def register(fn: Callable[..., Any]) -> Callable[..., Any]:
            kwargs.setdefault("help", reflow(fn.__doc__))
            return super(TalyTyper, self).command(*args, **kwargs)(guarded(fn))

        return register
