"""What the release catalogue, the ledger and the lock share: who acts, canonical JSON, and reading an object
back from the bucket as untrusted input (a damaged one is named, never a traceback)."""

from __future__ import annotations

import datetime as dt
import getpass
import json
import os
import socket
from typing import Any, Callable, TypeVar

from pydantic import BaseModel, ValidationError

from ...errors import VERDICT, TalyError

Clock = Callable[[], dt.datetime]
M = TypeVar("M", bound=BaseModel)
PREFIX = "releases/"


class Damaged(TalyError):
    """An object of the catalogue, the ledger or the lock that cannot be trusted: a negative verdict (exit 1)."""

    exit_code = VERDICT

    def __init__(self, location: str, reason: str, hint: str | None = None) -> None:
        super().__init__(f"{location} is damaged: {reason}", hint=hint)
        self.location, self.reason = location, reason

    @property
    def key(self) -> str:
        """The object's key in its bucket (location is s3://<bucket>/<key>)."""
        return self.location.split("/", 3)[-1]


def who() -> str:
    """user@host: who a release, a ledger entry or a lock belongs to."""
    try:
        user = getpass.getuser()
    except Exception:  # no passwd entry, no LOGNAME
        user = f"uid{os.getuid()}"
    return f"{user}@{socket.gethostname()}"


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def canonical(data: Any) -> bytes:
    """The one byte form digests are computed over: sorted keys, no spaces."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def dump(model: BaseModel) -> bytes:
    """A record as stored: readable JSON."""
    return (model.model_dump_json(indent=2) + "\n").encode()


def first_problem(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"])
    message = err["msg"].removeprefix("Value error, ")
    return f"{where}: {message}" if where else message


def parse(model: type[M], body: bytes, location: str) -> M:
    """body as a model, or Damaged naming location (not UTF-8, not JSON, not the shape it must have)."""
    try:
        data = json.loads(body.decode("utf-8"))
    except UnicodeDecodeError:
        raise Damaged(location, "not UTF-8 text") from None
    except ValueError as exc:
        raise Damaged(location, f"not JSON ({exc})") from None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise Damaged(location, first_problem(exc)) from None
