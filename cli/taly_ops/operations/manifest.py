"""A logical backup's manifest, read back from the bucket as untrusted input.

Anything in a bucket may have been truncated, edited or written by someone else: a manifest is
parsed and validated here (types, a sha256 per file, file paths that stay inside the download
directory, the backup id it is stored under) before anything reads it. A manifest that fails is
a damaged backup: listed as such, refused by drills and refreshes (exit 1) with the object's name
and the reason, and never in the way of the other backups.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ..errors import VERDICT, TalyError

SAFE_PATH = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]*(/[A-Za-z0-9_][A-Za-z0-9._-]*)*$")


class DamagedBackup(TalyError):
    """A backup whose manifest cannot be trusted: a negative verdict on that backup (exit 1)."""

    exit_code = VERDICT

    def __init__(self, backup_id: str, key: str, reason: str) -> None:
        super().__init__(f"backup {backup_id} is damaged: {key}: {reason}",
                         hint="other backups are unaffected; `taly backup list` marks the damaged ones")
        self.backup_id, self.key, self.reason = backup_id, key, reason


class _Model(BaseModel):
    model_config = ConfigDict(extra="allow")


class BackupFile(_Model):
    path: str
    size: int = Field(ge=0)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")

    @field_validator("path")
    @classmethod
    def _inside(cls, v: str) -> str:
        if not SAFE_PATH.match(v) or ".." in v.split("/"):
            raise ValueError("must be a relative path inside the dump directory")
        return v


class Snapshot(_Model):
    at: str

    @field_validator("at")
    @classmethod
    def _aware_time(cls, v: str) -> str:
        t = dt.datetime.fromisoformat(v)  # ValueError: not an ISO 8601 time
        if t.tzinfo is None:
            raise ValueError("must carry a UTC offset")
        return v


class Source(_Model):
    role: str
    host: str
    port: int
    database: str


class TableStats(_Model):
    rows: int = Field(ge=0)
    checksum: str


class SchemaFingerprint(_Model):
    fingerprint: str
    tables: dict[str, str]


class Manifest(_Model):
    backup_id: str
    created_at: str
    snapshot: Snapshot
    source: Source
    files: list[BackupFile] = Field(min_length=1)
    total_bytes: int = Field(ge=0)
    tables: dict[str, TableStats]
    schema_: SchemaFingerprint = Field(alias="schema")


def shorten(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _first_problem(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"]) or "the document"
    got = f" (got {shorten(err['input'])})" if err["type"] != "missing" and "input" in err else ""
    more = len(exc.errors()) - 1
    return f"{where}: {err['msg']}{got}" + (f"; and {more} more problem(s)" if more else "")


def validate(raw: Any, backup_id: str, key: str) -> dict[str, Any]:
    """The manifest as a dict, once it is known to be whole; DamagedBackup naming the key and the reason otherwise."""
    if not isinstance(raw, dict):
        raise DamagedBackup(backup_id, key, f"not a JSON object (a {type(raw).__name__})")
    try:
        Manifest.model_validate(raw)
    except ValidationError as exc:
        raise DamagedBackup(backup_id, key, _first_problem(exc)) from None
    if raw["backup_id"] != backup_id:
        raise DamagedBackup(backup_id, key, f"it names backup {shorten(raw['backup_id'])}, not the one it is stored as")
    return raw


def not_json(exc: ValueError) -> str:
    """Why an object is not JSON, in one short line."""
    first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return f"not valid JSON ({first[:120]})"
