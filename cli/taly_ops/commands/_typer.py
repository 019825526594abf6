"""What every taly command group shares: the guarded Typer class, error lines and progress on stderr, common help.

The guarded wrapper is the one place where an outcome that is not a command's own result becomes a
line on stderr and an exit code: a TalyError (its code: 2 or 3), an interruption (128 + the signal:
130 for Ctrl-C, 143 for SIGTERM), and the reader of stdout going away (141, as Unix tools exit on
SIGPIPE; never a verdict's code).
"""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import signal
import sys
from typing import Any, Callable, Iterator, NoReturn

import typer
from typer.core import TyperCommand, TyperGroup

from ..errors import READER_GONE, Interrupted, TalyError


def colour_on_stderr() -> bool:
    """Colour error lines only for a terminal, and never when NO_COLOR is set (https://no-color.org)."""
    if os.environ.get("NO_COLOR"):
        return False
    return bool(getattr(sys.stderr, "isatty", lambda: False)())


def error_line(message: str) -> None:
    """One line on stderr, red on a terminal that wants colour."""
    typer.secho(message, err=True, fg="red" if colour_on_stderr() else None, color=colour_on_stderr())


def exit_reader_gone() -> NoReturn:
    """stdout's reader went away (`taly ... | head -1`): exit 141 quietly, as a tool killed by SIGPIPE would.

    stdout (and stderr, when it is the same pipe) are pointed at /dev/null first, so the interpreter's
    final flush cannot fail again and print "Exception ignored ... BrokenPipeError".
    """
    devnull = os.open(os.devnull, os.O_WRONLY)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(AttributeError, OSError, ValueError):
            os.dup2(devnull, stream.fileno())
    raise SystemExit(READER_GONE)


def _is_broken_pipe(exc: OSError) -> bool:
    return isinstance(exc, BrokenPipeError) or exc.errno == errno.EPIPE


def _interrupted(exc: KeyboardInterrupt) -> NoReturn:
    signum = getattr(exc, "signum", signal.SIGINT)
    outcome = getattr(exc, "outcome", None)
    with contextlib.suppress(OSError):
        error_line(f"interrupted by {signal.Signals(signum).name}" + (f": {outcome}" if outcome else ""))
    raise typer.Exit(128 + signum) from None


def guarded(command: Callable[..., Any]) -> Callable[..., Any]:
    """Run a command; TalyError, an interruption and a closed stdout become a line and an exit code
    (also under CliRunner). See the module docstring for the codes."""

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except TalyError as exc:
            error_line(f"error: {exc.message}")
            if exc.hint:
                typer.echo(f"hint: {exc.hint}", err=True)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt as exc:  # Ctrl-C, and Interrupted (SIGTERM, SIGHUP) from guarded work
            _interrupted(exc)
        except OSError as exc:
            if _is_broken_pipe(exc):
                exit_reader_gone()
            raise

    return run


@contextlib.contextmanager
def on_interrupt(outcome: str | Callable[[Interrupted], str]) -> Iterator[None]:
    """Say what an interruption of this block left behind, on the command's last line.

    `outcome` is the text, or a function of the Interrupted that returns it. The guarded wrapper
    prints "interrupted by SIGTERM: <outcome>" and exits 128 + the signal.
    """
    try:
        yield
    except Interrupted as exc:
        if exc.outcome is None:
            exc.outcome = outcome(exc) if callable(outcome) else outcome
        raise


def _flags_without_type(params: list[Any]) -> list[Any]:
    """A flag takes no value: its help shows no type (Typer would print `<bool>`)."""
    for param in params:
        if getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""
    return params


class TalyCommand(TyperCommand):
    """Typer's command, with flags shown without a type in the help."""

    def get_params(self, ctx: Any) -> list[Any]:
        return _flags_without_type(super().get_params(ctx))


class TalyGroup(TyperGroup):
    """Typer's group: flags shown without a type; a closed stdout during help or parsing exits 141.

    Typer exits 1 on EPIPE, the code of a negative verdict; this turns it into READER_GONE first.
    """

    def get_params(self, ctx: Any) -> list[Any]:
        return _flags_without_type(super().get_params(ctx))

    def make_context(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().make_context(*args, **kwargs)
        except OSError as exc:
            if _is_broken_pipe(exc):
                exit_reader_gone()
            raise

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except OSError as exc:
            if _is_broken_pipe(exc):
                exit_reader_gone()
            raise


LOCAL_ONLY_ENV_HELP = ("Environment: local (the local estate), or dev, staging, prod (read from contracts/<env>.json, "
                       "credentials from Secrets Manager).")
LOCAL_STATE_DIR_HELP = "The local estate's state directory (default $TALY_LOCAL_STATE, else .taly/local)."
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

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("cls", TalyGroup)
        # Plain help and usage errors: Typer's Rich formatting costs `taly --help` 0.09 s of imports (it
        # doubles its time), and help text is then free of markup (`"[secret]"` stays as written).
        kwargs.setdefault("rich_markup_mode", None)
        super().__init__(*args, **kwargs)

    def command(self, *args: Any, **kwargs: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        def register(fn: Callable[..., Any]) -> Callable[..., Any]:
            kwargs.setdefault("help", reflow(fn.__doc__))
            kwargs.setdefault("cls", TalyCommand)
            return super(TalyTyper, self).command(*args, **kwargs)(guarded(fn))

        return register
