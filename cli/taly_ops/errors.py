"""Errors that reach the user as one clear line and an exit code (never a traceback).

Exit codes, for every command: 0 ok, 1 a negative verdict, 2 bad input or configuration,
3 a system that could not be reached or answered wrongly, 70 an internal error (a bug: please
report it), 128+n stopped by signal n (130 Ctrl-C, 143 SIGTERM, 129 SIGHUP; 141 when the reader of
the output went away, as `| head` does).
"""

from __future__ import annotations

import signal

OK, VERDICT, BAD_INPUT, UNREACHABLE = 0, 1, 2, 3
INTERNAL = 70  # EX_SOFTWARE (sysexits.h)
READER_GONE = 128 + signal.SIGPIPE  # 141: what a shell reports for a tool killed by SIGPIPE


class TalyError(Exception):
    exit_code = BAD_INPUT

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class BadInput(TalyError):
    exit_code = BAD_INPUT


class Unreachable(TalyError):
    exit_code = UNREACHABLE


class Interrupted(KeyboardInterrupt):
    """SIGTERM, SIGINT or SIGHUP during work that cleans up: unwinds through its finally blocks.

    `taly` exits 128 + signum (the shell's convention for a process stopped by a signal). `outcome`
    says what the interrupted work left, for the last line ("interrupted by SIGTERM: <outcome>");
    whoever knows it sets it (see `commands._typer.on_interrupt`).
    """

    def __init__(self, signum: int, outcome: str | None = None) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum
        self.outcome = outcome

    @property
    def exit_code(self) -> int:
        return 128 + self.signum
