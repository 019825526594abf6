"""Errors that reach the user as one clear line and an exit code (never a traceback).

Exit codes, for every command: 0 ok, 1 a negative verdict, 2 bad input or configuration,
3 a system that could not be reached or answered wrongly.
"""

from __future__ import annotations

OK, VERDICT, BAD_INPUT, UNREACHABLE = 0, 1, 2, 3


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
