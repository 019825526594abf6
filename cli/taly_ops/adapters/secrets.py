"""Secrets Manager: the one reader of the estate's credentials (database, cache, broker).

Each secret is a JSON object. A secret read once is cached for the life of the reader (a failure
too, so that concurrent callers sharing one secret fail at once instead of each asking again), and
every secret value read is remembered in `revealed`, so that whatever prints can scrub it.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from typing import Any

from .aws import Aws

SECRET_KEY = re.compile(r"pass|token|secret|key", re.IGNORECASE)  # which fields of a secret are secret


class SecretUnreadable(Exception):
    """A secret could not be read or is not what it should be: one line naming it, never its value."""


@dataclass
class SecretsReader:
    aws: Aws
    revealed: set[str] = field(default_factory=set)
    _cache: dict[str, tuple[bool, Any]] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _locks: dict[str, threading.Lock] = field(default_factory=dict, repr=False)

    def remember(self, *values: Any) -> None:
        with self._lock:
            self.revealed.update(str(v) for v in values if v and len(str(v)) >= 4)

    def json(self, arn: str, *, needs: tuple[str, ...] = ()) -> dict[str, Any]:
        """The secret's JSON object; SecretUnreadable when it cannot be read or lacks a key in `needs`."""
        with self._lock:
            key_lock = self._locks.setdefault(arn, threading.Lock())
        with key_lock:
            if arn not in self._cache:
                try:
                    self._cache[arn] = (True, self._read(arn))
                except Exception as exc:  # noqa: BLE001 - remembered and re-raised to every caller
                    self._cache[arn] = (False, exc)
            ok, value = self._cache[arn]
        if not ok:
            raise value
        missing = [k for k in needs if not isinstance(value.get(k), str)]
        if missing:
            raise SecretUnreadable(f"secret {arn} has no {', '.join(missing)}")
        return value

    def _read(self, arn: str) -> dict[str, Any]:
        try:
            text = self.aws.client("secretsmanager").get_secret_value(SecretId=arn)["SecretString"]
        except Exception as exc:  # noqa: BLE001 - botocore's errors, as one line
            message = " ".join(str(exc).split()) or type(exc).__name__
            raise SecretUnreadable(f"{type(exc).__name__}: {message}"[:300]) from None
        self.remember(text)
        try:
            data = json.loads(text)
        except ValueError:
            raise SecretUnreadable(f"secret {arn} is not a JSON object") from None
        if not isinstance(data, dict):
            raise SecretUnreadable(f"secret {arn} is not a JSON object")
        self.remember(*[v for k, v in data.items() if isinstance(v, str) and SECRET_KEY.search(k)])
        return data
