"""Fakes of OUR adapter interfaces (never of a client library) for fast orchestration tests.

- FakeStore: adapters/s3_store.Store's interface (check, keys, get_json, put_json; get, put_new, put_if_match,
  delete_if_match with ETags as S3 gives them) over a dict of key -> bytes, so a test can put exactly the
  damaged object it means into "the bucket".
- FakeClock: a monotonic clock for operations/steps.Steps that moves only when the test says.
- WallClock: a UTC wall clock (releases, the ledger, the lock) that moves only when the test says.
- FakeConfirmer: a confirmer for operations/steps.Steps that gives one answer and keeps what it was asked.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any

from taly_ops.adapters.s3_store import Blob


class FakeStore:
    bucket = "taly-local-backups"

    def __init__(self, objects: dict[str, bytes] | None = None) -> None:
        self.objects = dict(objects or {})
        self.modified: dict[str, dt.datetime] = {}  # LastModified, where a test sets one

    def check(self) -> None:
        pass

    def get_json(self, key: str) -> Any:
        if key not in self.objects:
            raise KeyError(key)
        return json.loads(self.objects[key])  # ValueError for what is not JSON, as the real Store

    def put_json(self, key: str, data: Any) -> None:
        self.objects[key] = json.dumps(data, default=str).encode()

    def etag(self, key: str) -> str:
        return '"' + hashlib.md5(self.objects[key]).hexdigest() + '"'

    def get(self, key: str) -> Blob:
        if key not in self.objects:
            raise KeyError(key)
        return Blob(self.objects[key], self.etag(key), self.modified.get(key))

    def put_new(self, key: str, body: bytes) -> str | None:
        if key in self.objects:
            return None
        self.objects[key] = body
        return self.etag(key)

    def put_if_match(self, key: str, body: bytes, etag: str) -> str | None:
        if key not in self.objects or self.etag(key) != etag:
            return None
        self.objects[key] = body
        return self.etag(key)

    def delete_if_match(self, key: str, etag: str) -> bool:
        if key not in self.objects or self.etag(key) != etag:
            return False
        del self.objects[key]
        return True

    def keys(self, prefix: str, delimiter: str | None = None) -> list[dict[str, Any]]:
        under = sorted(k for k in self.objects if k.startswith(prefix))
        if not delimiter:
            return [{"Key": k} for k in under]
        return [{"Prefix": p} for p in sorted({prefix + k[len(prefix):].split(delimiter)[0] + delimiter
                                                for k in under})]


class FakeClock:
    def __init__(self, start: float = 100.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


class WallClock:
    def __init__(self, start: dt.datetime = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.timezone.utc)) -> None:
        self.now = start

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += dt.timedelta(seconds=seconds)


class FakeConfirmer:
    def __init__(self, answer: bool) -> None:
        self.answer = answer
        self.asked: list[Any] = []  # the Change of each question

    def __call__(self, change: Any) -> bool:
        self.asked.append(change)
        return self.answer
