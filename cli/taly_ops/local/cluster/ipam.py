"""Pod IPs on loopback: each pod its own 127.0.x.y, so every pod listens on its own containerPort.

Linux routes all of 127.0.0.0/8 to lo, so binding any of these needs no setup. Addresses are handed
out in order from a random start in 127.0.16.0 - 127.0.255.255 (two clusters on one machine rarely
meet), skipping any where one of the pod's ports is already taken, and not reused until the range
wraps (a released address may still have connections in TIME_WAIT).
"""

from __future__ import annotations

import random
import socket
import threading

FIRST, LAST = (16 << 8) + 1, (255 << 8) + 254     # 127.0.16.1 .. 127.0.255.254


def _address(n: int) -> str:
    return f"127.0.{n >> 8}.{n & 0xFF}"


def _usable(n: int) -> bool:
    return 0 < (n & 0xFF) < 255   # neither .0 nor .255


def _free(ip: str, ports: list[int]) -> bool:
    for port in ports:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind((ip, port))
            except OSError:
                return False
    return True


class IPAllocator:
    def __init__(self, start: int | None = None) -> None:
        self._next = start if start is not None else random.randint(FIRST, LAST)
        self._used: set[int] = set()
        self._lock = threading.Lock()

    def allocate(self, ports: list[int]) -> str:
        """An address no pod of ours has, where `ports` can be bound now."""
        with self._lock:
            for _ in range(LAST - FIRST + 1):
                n = self._next
                self._next = FIRST if n >= LAST else n + 1
                if _usable(n) and n not in self._used and _free(_address(n), ports):
                    self._used.add(n)
                    return _address(n)
        raise RuntimeError("no free pod IP left in 127.0.16.1 - 127.0.255.254")

    def release(self, ip: str) -> None:
        parts = ip.split(".")
        with self._lock:
            self._used.discard((int(parts[2]) << 8) + int(parts[3]))

    def in_use(self) -> set[str]:
        with self._lock:
            return {_address(n) for n in self._used}
