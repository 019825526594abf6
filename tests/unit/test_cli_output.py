"""Output for pipes, scripts and terminals: closed pipes, NO_COLOR, widths, values for people, exit codes."""

from __future__ import annotations

import os
import pty
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

TALY = shutil.which("taly", path=str(Path(sys.executable).parent)) or "taly"


def _run_into_closed_pipe(*args: str) -> subprocess.CompletedProcess:
    """Run taly with stdout a pipe whose reader is already gone (what `| head -1` leaves)."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        return subprocess.run([TALY, *args], stdout=write_end, stderr=subprocess.PIPE, text=True, timeout=60)
    finally:
        os.close(write_end)


@pytest.mark.parametrize("args", [("policy", "list"), ("policy", "list", "-o", "json"), ("--help",),
                                  ("plan", "--help")])
def test_a_closed_pipe_exits_141_quietly_never_with_a_verdict(args):
    proc = _run_into_closed_pipe(*args)
    assert proc.returncode == 128 + signal.SIGPIPE, proc.stderr
    assert proc.stderr == ""  # no traceback, no "Exception ignored ... BrokenPipeError"


def _stderr_on_a_terminal(args: list[str], env: dict[str, str]) -> str:
    """Run taly with stderr on a pseudo-terminal (colour is only ever sent to a terminal); return what it wrote."""
    primary, secondary = pty.openpty()
    try:
        proc = subprocess.run([TALY, *args], stdout=subprocess.DEVNULL, stderr=secondary, timeout=60,
                              env={k: v for k, v in {**os.environ, **env}.items() if v is not None})
        os.close(secondary)
        chunks = []
        while True:
            try:
                chunk = os.read(primary, 4096)
            except OSError:  # EIO: the terminal's other side is closed and drained
                break
            if not chunk:
                break
            chunks.append(chunk)
        assert proc.returncode == 2
        return b"".join(chunks).decode()
    finally:
        os.close(primary)


def test_error_lines_honour_no_color():
    args = ["plan", "--env", "qa"]
    coloured = _stderr_on_a_terminal(args, {"NO_COLOR": None, "TERM": "xterm"})
    assert "\x1b[" in coloured and "unknown environment 'qa'" in coloured  # the test can see colour
    plain = _stderr_on_a_terminal(args, {"NO_COLOR": "1", "TERM": "xterm"})
    assert "unknown environment 'qa'" in plain and "\x1b[" not in plain


def test_error_lines_are_plain_when_stderr_is_not_a_terminal():
    proc = subprocess.run([TALY, "plan", "--env", "qa"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "\x1b[" not in proc.stderr


_TABLE_SCRIPT = textwrap.dedent("""
    from rich.table import Table
    from taly_ops.render import console
    t = Table(title="2 backups")
    for header in ("id", "snapshot at", "source", "bytes", "tables", "rows"):
        t.add_column(header)
    for n in (1, 2):
        t.add_row(f"20261202T15580{n}Z-1a2b3c", "2026-12-02T15:58:00.123456+00:00", "replica 127.0.0.1:54321 (standby)",
                  "1,234,567,890", "12", "1,000,000")
    console().print(t)
""")


def test_piped_tables_keep_whole_ids_beyond_80_columns():
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    proc = subprocess.run([sys.executable, "-c", _TABLE_SCRIPT], capture_output=True, text=True, timeout=60, env=env)
    assert proc.returncode == 0, proc.stderr
    assert "20261202T155801Z-1a2b3c" in proc.stdout and "20261202T155802Z-1a2b3c" in proc.stdout
    assert "2026-12-02T15:58:00.123456+00:00" in proc.stdout and "…" not in proc.stdout


def test_ids_stay_whole_and_headers_unbroken_on_a_narrow_terminal():
    from rich.console import Console

    from taly_ops.render import column, table

    t = table("health")
    column(t, "component")
    column(t, "drill", ident=True)
    for header in ("observed", "threshold", "detail"):
        column(t, header, overflow="fold")
    t.add_row("postgres", "drill-20261202T155800Z-1a2b3c", "lag 0.2 s", "< 10 s", "replica streaming " * 4)
    out = Console(width=80, record=True, file=open(os.devnull, "w"))
    out.print(t)
    text = out.export_text()
    assert "drill-20261202T155800Z-1a2b3c" in text
    for header in ("component", "observed", "threshold", "detail"):
        assert header in text, text


@pytest.mark.parametrize("value,expected", [
    (True, "yes"), (False, "no"), (None, "—"), (200.0, "200"), (0.25, "0.25"), (0.0004, "0.0004"), (12.34567, "12.346"),
    ({"download_seconds": 0.25, "restore_seconds": 3.0}, "download_seconds: 0.25, restore_seconds: 3"),
    ([{"rule": "a", "reason": "b"}, {"rule": "c", "reason": "d"}], "rule: a, reason: b; rule: c, reason: d"),
    (["eu-west-1a", "eu-west-1b"], "eu-west-1a, eu-west-1b"), ([], "none"), ("text", "text"), (3, "3"),
])
def test_values_are_rendered_for_people(value, expected):
    from taly_ops.render import human

    assert human(value) == expected


def _app_raising(exc: BaseException, outcome: str | None = None):
    from taly_ops.commands._typer import TalyTyper, on_interrupt

    app = TalyTyper()

    @app.command()
    def work() -> None:
        if outcome is None:
            raise exc
        with on_interrupt(outcome):
            raise exc

    @app.command()
    def other() -> None:  # two commands, so `work` is a subcommand as in taly
        typer.echo("unused")

    return app


@pytest.mark.parametrize("signum,outcome,code,line", [
    (signal.SIGTERM, "no backup was recorded", 143, "interrupted by SIGTERM: no backup was recorded"),
    (signal.SIGHUP, None, 129, "interrupted by SIGHUP"),
    (None, None, 130, "interrupted by SIGINT"),  # Ctrl-C outside guarded work: a plain KeyboardInterrupt
])
def test_an_interruption_exits_128_plus_the_signal_with_one_line(signum, outcome, code, line):
    from taly_ops.errors import Interrupted

    exc = KeyboardInterrupt() if signum is None else Interrupted(signum)
    result = CliRunner().invoke(_app_raising(exc, outcome), ["work"])
    assert result.exit_code == code
    assert result.stderr.strip() == line
