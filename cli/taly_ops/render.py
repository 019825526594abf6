"""Renderers: JSON for machines, Rich tables for people. Renderers never decide anything.

Every command's human output goes through `console()`, `table()`, `column()` and `human()`, so
pipes, captured runs and terminals all get whole ids, unbroken headers and values written for people.
"""

from __future__ import annotations

import datetime as dt
import errno
import functools
import json
import os
import sys
from enum import Enum
from typing import Any, Callable

# A pipe or a file has no screen to fit: Rich would assume 80 columns and cut ids (`20261202T1558…`).
PIPE_WIDTH = 200


class Output(str, Enum):
    table = "table"
    json = "json"


def emit_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")
    sys.stdout.flush()  # a closed pipe fails here, inside the command, not at the interpreter's exit


def console():
    """The stdout console: the terminal's width on a terminal; otherwise $COLUMNS if set, else PIPE_WIDTH.

    Colour follows Rich's rules (NO_COLOR, a terminal); styles are dropped in pipes. A closed pipe
    raises BrokenPipeError, which the commands' guard turns into exit 141 (Rich would exit 1, the
    code of a negative verdict).
    """
    cls = _console_class()
    if _is_terminal(sys.stdout):
        return cls()
    columns = os.environ.get("COLUMNS", "")
    return cls(width=int(columns) if columns.isdigit() and int(columns) > 0 else PIPE_WIDTH)


@functools.cache
def _console_class():
    from rich.console import Console

    class PipeAwareConsole(Console):
        def on_broken_pipe(self) -> None:
            self.quiet = True
            raise BrokenPipeError(errno.EPIPE, "the reader of stdout went away")

    return PipeAwareConsole


def _is_terminal(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def table(title: str, **kwargs: Any):
    """A Rich table with its title on the left (how every taly table reads)."""
    from rich.table import Table

    kwargs.setdefault("title_justify", "left")
    return Table(title=title, **kwargs)


def column(t: Any, header: str, *, ident: bool = False, **kwargs: Any) -> None:
    """Add a column whose header never breaks inside a word; `ident=True` for ids, which are never cut.

    Use `ident=True` for anything a person copies into another command (a backup id for `--from`, a
    drill id, a snapshot id, a resource type): such a column keeps its whole width while the others
    wrap, and on a terminal too narrow even for it the id folds onto a second line, never "…".
    Other keyword arguments go to `Table.add_column` (justify, ratio, style...).
    """
    longest_word = max((len(word) for word in header.split()), default=1)
    kwargs["min_width"] = max(kwargs.get("min_width") or 0, longest_word)
    if ident:
        kwargs.setdefault("no_wrap", True)
        kwargs.setdefault("overflow", "fold")
    t.add_column(header, **kwargs)


def human(value: Any) -> str:
    """A value as a person reads it: yes/no, not True/False; "k: v, k: v", not a dict's repr; "—" for None.

    For any value in human output (a plan comparison's settings, a drill's timings, a flag's state).
    Floats lose trailing zeros (`0.25`, `200`); lists of mappings read "a: 1, b: 2; a: 3, b: 4".
    """
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if value.is_integer():
            return str(int(value))
        return str(round(value, 3)) if round(value, 3) else f"{value:.3g}"
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    if isinstance(value, Enum):
        return human(value.value)
    if isinstance(value, dict):
        return ", ".join(f"{k}: {human(v)}" for k, v in value.items()) or "none"
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value, key=str) if isinstance(value, (set, frozenset)) else value
        sep = "; " if any(isinstance(v, dict) for v in items) else ", "
        return sep.join(human(v) for v in items) or "none"
    return str(value)


def emit(output: Output, data: Any, render_table: Callable[[Any], None]) -> None:
    if output == Output.json:
        emit_json(data)
    else:
        render_table(data)
