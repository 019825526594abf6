"""An append-only audit log: one JSON line per state-changing operation (backups, drills).

Who (the OS user), what, which environment, the inputs, the outcome, and the state before and after.
Secrets never reach it: keys that name a secret are dropped, and so are DSN-like strings holding one.
"""

from __future__ import annotations

import datetime as dt
import getpass
import json
import os
from pathlib import Path
from typing import Any

SECRET_WORDS = ("password", "secret", "token", "access_key", "credential")
AUDIT_FILE = "audit.log"


def scrub(value: Any) -> Any:
    """A copy of value without anything that looks like a secret."""
    if isinstance(value, dict):
        return {k: scrub(v) for k, v in value.items() if not any(w in str(k).lower() for w in SECRET_WORDS)}
    if isinstance(value, (list, tuple)):
        return [scrub(v) for v in value]
    if isinstance(value, str) and "password=" in value:
        return "<redacted>"
    if isinstance(value, Path):
        return str(value)
    return value


def _who() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no passwd entry, no LOGNAME: still log
        return f"uid:{os.getuid()}"


def record(log_dir: Path, what: str, environment: str, *, inputs: dict[str, Any] | None = None,
           outcome: str, before: Any = None, after: Any = None, detail: Any = None) -> dict[str, Any]:
    """Append one line to <log_dir>/audit.log (created mode 600) and return it."""
    entry = {
        "at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds"),
        "who": _who(), "what": what, "environment": environment, "inputs": scrub(inputs or {}),
        "outcome": outcome, "before": scrub(before), "after": scrub(after),
    }
    if detail is not None:
        entry["detail"] = scrub(detail)
    log_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(log_dir / AUDIT_FILE, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "a") as f:
        f.write(json.dumps(entry, default=str, sort_keys=False) + "\n")
    return entry
