"""One promotion or rollback at a time per environment: releases/lock.json in its backups bucket.

Acquired with `If-None-Match: *` (only one writer can create it), kept alive by a heartbeat that replaces it
with `If-Match` on the ETag it last wrote (so a heartbeat never resurrects a lock someone took over), and
released by a delete with `If-Match`. A second acquire is refused (LockHeld, exit 1) naming the holder
(user@host, pid, what it does), how long it has held the lock and when it last beat. A lock whose heartbeat
is older than its TTL is stale: its holder is presumed dead, and it is taken over only when asked
(`take_over_stale`), with `If-Match` on the stale lock's ETag (two takers cannot both win), and audited.
Ages compare the injected clock with times another machine wrote: clocks are assumed to agree within
well under the TTL.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ... import audit
from ...errors import VERDICT, TalyError
from .stored import PREFIX, Clock, Damaged, dump, parse, utc_now, who

LOCK = PREFIX + "lock.json"
TTL_SECONDS = 120  # a holder silent for two minutes is presumed dead
BEATS_PER_TTL = 4  # the heartbeat's period is TTL / 4: three beats may fail before the lock goes stale


class LockRecord(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    holder: str = Field(min_length=1, max_length=200, description="user@host")
    pid: int = Field(ge=1)
    token: str = Field(pattern=r"^[0-9a-f]{32}$", description="this acquisition's secret-free identity")
    operation: str = Field(max_length=500, description="what the holder does, e.g. promote <release> to <env>")
    started_at: dt.datetime
    heartbeat_at: dt.datetime
    ttl_seconds: int = Field(ge=1)


class LockHeld(TalyError):
    """Someone else holds the lock (exit 1)."""

    exit_code = VERDICT


class LockLost(TalyError):
    """The lock was taken over or removed while held: stop before changing anything more (exit 1)."""

    exit_code = VERDICT


def _ago(seconds: float) -> str:
    s = int(max(seconds, 0))
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"


@dataclass(frozen=True)
class LockStatus:
    """The lock as found: its record (None when damaged, with the reason), its ETag and ages by the clock."""

    record: LockRecord | None
    etag: str
    age_seconds: float        # since it was taken (damaged: since it was last written)
    silent_seconds: float     # since its last heartbeat (damaged: since it was last written)
    stale: bool
    damaged: str | None = None

    def describe(self, environment: str) -> str:
        if self.record is None:
            return (f"the {environment} lock ({LOCK}) is damaged ({self.damaged}); "
                    f"it was last written {_ago(self.silent_seconds)} ago")
        r = self.record
        return (f"the {environment} lock is held by {r.holder} (pid {r.pid}) for {r.operation!r}: taken "
                f"{_ago(self.age_seconds)} ago ({r.started_at.isoformat()}), last heartbeat "
                f"{_ago(self.silent_seconds)} ago" + (f", stale (TTL {r.ttl_seconds}s)" if self.stale else ""))

    def to_json(self) -> dict[str, Any]:
        return {"holder": self.record.model_dump(mode="json") if self.record else None, "damaged": self.damaged,
                "age_seconds": round(self.age_seconds, 1), "silent_seconds": round(self.silent_seconds, 1),
                "stale": self.stale}


@dataclass
class EnvironmentLock:
    store: Any  # adapters.s3_store.Store
    environment: str
    audit_dir: Path
    clock: Clock = utc_now
    ttl_seconds: int = TTL_SECONDS
    holder: str = field(default_factory=who)

    def status(self) -> LockStatus | None:
        """The lock as it is now; None when nobody holds it."""
        try:
            blob = self.store.get(LOCK)
        except KeyError:
            return None
        now = self.clock()
        try:
            record = parse(LockRecord, blob.body, f"s3://{self.store.bucket}/{LOCK}")
        except Damaged as exc:
            silent = (now - blob.last_modified).total_seconds() if blob.last_modified else float("inf")
            return LockStatus(None, blob.etag, silent, silent, silent > self.ttl_seconds, exc.reason)
        silent = (now - record.heartbeat_at).total_seconds()
        return LockStatus(record, blob.etag, (now - record.started_at).total_seconds(), silent,
                          silent > record.ttl_seconds)

    def acquire(self, operation: str, *, take_over_stale: bool = False) -> "HeldLock":
        """The lock, or LockHeld naming its holder; a stale lock is taken over only with take_over_stale."""
        for _ in range(3):  # the holder may release it between our attempt and our look
            now = self.clock()
            record = LockRecord(holder=self.holder, pid=os.getpid(), token=secrets.token_hex(16), operation=operation,
                                started_at=now, heartbeat_at=now, ttl_seconds=self.ttl_seconds)
            etag = self.store.put_new(LOCK, dump(record))
            if etag is not None:
                return HeldLock(self, record, etag)
            found = self.status()
            if found is None:
                continue
            if not found.stale:
                raise LockHeld(found.describe(self.environment),
                               hint=f"wait for it; if its holder is gone, the lock goes stale {self.ttl_seconds}s "
                                    "after its last heartbeat and can then be taken over explicitly")
            if not take_over_stale:
                raise LockHeld(found.describe(self.environment),
                               hint="its holder is presumed dead; take it over explicitly (audited) if so")
            etag = self.store.put_if_match(LOCK, dump(record), found.etag)
            if etag is None:
                continue  # another taker won, or it was released: look again
            audit.record(self.audit_dir, "release.lock.takeover", self.environment,
                         inputs={"operation": operation, "lock": f"s3://{self.store.bucket}/{LOCK}"},
                         outcome="taken-over", after=record.model_dump(mode="json"),
                         before=found.to_json())
            return HeldLock(self, record, etag)
        raise LockHeld(f"the {self.environment} lock changed hands three times while it was being acquired",
                       hint="several promotions at once; retry")


@dataclass
class HeldLock:
    """A lock this process holds: `beat()` keeps it alive (or a heartbeat thread, `start_heartbeat`), `check()`
    raises LockLost once it is no longer ours, `release()` removes it. As a context manager: heartbeat while
    inside, release on the way out."""

    lock: EnvironmentLock
    record: LockRecord
    etag: str
    lost: str | None = None
    heartbeat_error: str | None = None  # the last beat that failed without an answer (S3 unreachable)
    _mutex: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _stop: threading.Event = field(default_factory=threading.Event, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)

    def beat(self) -> bool:
        """Write a fresh heartbeat; False (and `lost` set) when the lock is no longer ours."""
        with self._mutex:
            if self.lost:
                return False
            record = self.record.model_copy(update={"heartbeat_at": self.lock.clock()})
            etag = self.lock.store.put_if_match(LOCK, dump(record), self.etag)
            if etag is None:
                self.lost = "the lock was taken over or removed while held"
                return False
            self.record, self.etag = record, etag
            return True

    def start_heartbeat(self, period: float | None = None) -> None:
        """Beat every `period` seconds (default TTL / 4) in a daemon thread until released or lost; once."""
        if self._thread is not None:
            return
        period = period if period is not None else self.record.ttl_seconds / BEATS_PER_TTL

        def run() -> None:
            while not self._stop.wait(period):
                try:
                    if not self.beat():
                        return
                except Exception as exc:  # noqa: BLE001 - the thread must outlive one failed beat
                    self.heartbeat_error = f"{type(exc).__name__}: {exc}"  # the next beat may land within the TTL

        self._thread = threading.Thread(target=run, name=f"lock-heartbeat-{self.lock.environment}", daemon=True)
        self._thread.start()

    def check(self) -> None:
        if self.lost:
            raise LockLost(f"the {self.lock.environment} lock is no longer ours: {self.lost}",
                           hint=f"`taly release history --env {self.lock.environment}` shows who holds it")

    def release(self) -> bool:
        """Stop the heartbeat and delete the lock if it is still ours; False when it was not."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        with self._mutex:
            if self.lost:
                return False
            if not self.lock.store.delete_if_match(LOCK, self.etag):
                self.lost = "the lock was taken over or removed while held"
                return False
            self.lost = "released"
            return True

    def __enter__(self) -> "HeldLock":
        self.start_heartbeat()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()
