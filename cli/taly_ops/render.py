"""Renderers: JSON for machines, Rich tables for people. Renderers never decide anything."""

from __future__ import annotations

import json
import sys
from enum import Enum
from typing import Any, Callable


class Output(str, Enum):
    table = "table"
    json = "json"


def emit_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")


def console():
    from rich.console import Console

    return Console()


def emit(output: Output, data: Any, table: Callable[[Any], None]) -> None:
    if output == Output.json:
        emit_json(data)
    else:
        table(data)
