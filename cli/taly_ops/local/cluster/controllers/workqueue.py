"""The controllers' work queue, with client-go's workqueue semantics.

A key is queued at most once; a key being processed is not handed to a second worker, and a key
added meanwhile comes back once the first is done (so two workers never sync one object at once).
`add_after` delays by the injected clock (progress deadlines, minReadySeconds: a test moves the
clock instead of sleeping); `add_rate_limited` backs a failing key off exponentially in real time
(5 ms doubling to 1000 s, as the default controller rate limiter), `forget` resets it.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from typing import Callable


class WorkQueue:
    BASE_DELAY = 0.005
    MAX_DELAY = 1000.0

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._cond = threading.Condition()
        self._queue: list[str] = []
        self._dirty: set[str] = set()
        self._processing: set[str] = set()
        self._delayed: list[tuple[float, int, str]] = []   # by the injected clock
        self._backoff: list[tuple[float, int, str]] = []   # by time.monotonic
        self._failures: dict[str, int] = {}
        self._seq = itertools.count()
        self._shutting_down = False

    def add(self, key: str) -> None:
        with self._cond:
            if self._shutting_down or key in self._dirty:
                return
            self._dirty.add(key)
            if key not in self._processing:
                self._queue.append(key)
                self._cond.notify()

    def add_after(self, key: str, seconds: float) -> None:
        if seconds <= 0:
            self.add(key)
            return
        with self._cond:
            heapq.heappush(self._delayed, (self._clock() + seconds, next(self._seq), key))

    def add_rate_limited(self, key: str) -> None:
        with self._cond:
            n = self._failures.get(key, 0)
            self._failures[key] = n + 1
            delay = min(self.BASE_DELAY * 2 ** n, self.MAX_DELAY)
            heapq.heappush(self._backoff, (time.monotonic() + delay, next(self._seq), key))
            self._cond.notify()

    def forget(self, key: str) -> None:
        with self._cond:
            self._failures.pop(key, None)

    def retries(self, key: str) -> int:
        with self._cond:
            return self._failures.get(key, 0)

    def tick(self) -> None:
        """Queue every delayed key that is due (by the injected clock)."""
        due = []
        with self._cond:
            now = self._clock()
            while self._delayed and self._delayed[0][0] <= now:
                due.append(heapq.heappop(self._delayed)[2])
        for key in due:
            self.add(key)

    def _release_backoff(self) -> float | None:
        """Queue the backed-off keys that are due; seconds until the next one. Called locked."""
        now = time.monotonic()
        while self._backoff and self._backoff[0][0] <= now:
            key = heapq.heappop(self._backoff)[2]
            if key not in self._dirty:
                self._dirty.add(key)
                if key not in self._processing:
                    self._queue.append(key)
        return self._backoff[0][0] - now if self._backoff else None

    def get(self, timeout: float | None = None) -> str | None:
        """The next key (mark it done() after), or None on shutdown or timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while True:
                wait = self._release_backoff()
                if self._queue:
                    key = self._queue.pop(0)
                    self._processing.add(key)
                    self._dirty.discard(key)
                    return key
                if self._shutting_down:
                    return None
                if deadline is not None:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        return None
                    wait = left if wait is None else min(wait, left)
                self._cond.wait(wait)

    def done(self, key: str) -> None:
        with self._cond:
            self._processing.discard(key)
            if key in self._dirty:
                self._queue.append(key)
                self._cond.notify()

    def shutdown(self) -> None:
        with self._cond:
            self._shutting_down = True
            self._cond.notify_all()

    def __len__(self) -> int:
        with self._cond:
            return len(self._queue)

    def idle(self) -> bool:
        """Nothing queued, processing or backing off (delayed keys, waiting on the clock, do not count)."""
        with self._cond:
            return not self._queue and not self._processing and not self._backoff
