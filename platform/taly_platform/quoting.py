"""Values quoted in error messages: whole when short, shortened when not (a bad value can be megabytes)."""

from __future__ import annotations

import json
from typing import Any

LIMIT = 80


def quote(value: Any, limit: int = LIMIT) -> str:
    """`value` as JSON, cut to `limit` characters with a note of how long it was."""
    try:
        text = json.dumps(value, default=str, ensure_ascii=False)
    except (ValueError, RecursionError):  # a structure that refers to itself
        text = repr(type(value).__name__)
    return shorten(text, limit)


def shorten(text: str, limit: int = LIMIT) -> str:
    """`text` cut to `limit` characters with a note of how long it was (e.g. a value's repr)."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text)} characters)"
