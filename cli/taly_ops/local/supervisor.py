"""Processes of the local estate: free ports, spawning detached children, watching and stopping them by pid.

Every server runs in its own session (start_new_session), so it outlives `taly local up` and can be
stopped, with whatever it forked, through its process group. A pid is always recorded with its start
time from /proc, so a pid the kernel has since given to another process is never signalled.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Sequence

from ..errors import Unreachable

_reserved: set[int] = set()
_reserved_lock = threading.Lock()


class Cancelled(Exception):
    """Another component failed: stop waiting, the estate is being torn down."""


class StartFailed(Unreachable):
    """A component could not start: one line naming it, and the tail of its log as the hint."""

    def __init__(self, component: str, reason: str, log: Path | str | None = None, lines: int = 15) -> None:
        self.component = component
        self.log = Path(log) if log else None
        hint = None
        if self.log:
            body = tail(self.log, lines)
            hint = f"last lines of {self.log}:\n{body}" if body else f"its log {self.log} is empty"
        super().__init__(f"{component} could not start: {reason}", hint)


# --- ports ------------------------------------------------------------------------------------------

def free_port(host: str = "127.0.0.1") -> int:
    """A port free right now on host, never the same twice in this process."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((host, 0))
            port = s.getsockname()[1]
        with _reserved_lock:
            if port not in _reserved:
                _reserved.add(port)
                return port
    raise Unreachable("no free TCP port found on 127.0.0.1")


def port_open(port: int, host: str = "127.0.0.1", timeout: float = 0.25) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


# --- process facts ----------------------------------------------------------------------------------

def _stat(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name (index 0 is the state), or None."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError, OSError):
        return None
    return raw[raw.rfind(")") + 2:].split()


def start_time(pid: int) -> int | None:
    fields = _stat(pid)
    return int(fields[19]) if fields else None


def pgid_of(pid: int) -> int | None:
    fields = _stat(pid)
    return int(fields[2]) if fields else None


def _reap(pid: int) -> None:
    """Collect the exit status if pid is our own child (tests run up and down in one process)."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
    except OSError:
        pass


def alive(pid: int | None, started: int | None = None) -> bool:
    """True while pid runs (not a zombie) and, if given, is still the process started at `started`."""
    if not pid or pid <= 0:
        return False
    _reap(pid)
    fields = _stat(pid)
    if not fields or fields[0] in ("Z", "X", "x"):
        return False
    return started is None or int(fields[19]) == started


def group_members(pgid: int) -> list[int]:
    members = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat(int(entry))
            if fields and int(fields[2]) == pgid and fields[0] not in ("Z", "X", "x"):
                members.append(int(entry))
    return members


def tail(path: Path | str, lines: int = 15) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 16384))
            text = f.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


# --- running ----------------------------------------------------------------------------------------

@dataclass
class Spawned:
    pid: int
    start_time: int | None
    pgid: int | None
    popen: subprocess.Popen | None = None


def _as_user(user: str | None) -> dict:
    if not user:
        return {}
    import pwd

    entry = pwd.getpwnam(user)
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}


def spawn(argv: Sequence[str], *, log: Path, env: Mapping[str, str] | None = None, cwd: Path | None = None,
          user: str | None = None) -> Spawned:
    """Start argv in its own session, stdout and stderr appended to log; returns at once."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        try:
            proc = subprocess.Popen(
                list(argv), stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, close_fds=True,
                start_new_session=True, env=dict(env) if env is not None else None, cwd=cwd, **_as_user(user),
            )
        except OSError as exc:
            raise StartFailed(Path(argv[0]).name, f"cannot run {argv[0]}: {exc.strerror or exc}", log) from None
    return Spawned(proc.pid, start_time(proc.pid), proc.pid, proc)


def run(argv: Sequence[str], *, component: str, log: Path, env: Mapping[str, str] | None = None,
        cwd: Path | None = None, user: str | None = None, timeout: float = 120) -> str:
    """Run a step to completion; its output goes to log too. Raises StartFailed on failure."""
    log.parent.mkdir(parents=True, exist_ok=True)
    try:
        done = subprocess.run(
            list(argv), stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout,
            env=dict(env) if env is not None else None, cwd=cwd, **_as_user(user),
        )
    except subprocess.TimeoutExpired:
        raise StartFailed(component, f"{Path(argv[0]).name} took longer than {timeout:.0f}s", log) from None
    except OSError as exc:
        raise StartFailed(component, f"cannot run {argv[0]}: {exc.strerror or exc}", log) from None
    with open(log, "a") as out:
        out.write(f"$ {' '.join(argv)}\n{done.stdout}{done.stderr}")
    if done.returncode != 0:
        raise StartFailed(component, f"{Path(argv[0]).name} exited with {done.returncode}", log)
    return done.stdout


def wait_until(check: Callable[[], bool], *, component: str, what: str, timeout: float, log: Path | None = None,
               pid: int | None = None, cancel: threading.Event | None = None, interval: float = 0.05) -> None:
    """Poll check() until true; fail fast if pid exits or another component failed (cancel)."""
    deadline = time.monotonic() + timeout
    while True:
        if cancel is not None and cancel.is_set():
            raise Cancelled(component)
        try:
            if check():
                return
        except Exception:  # a server still booting answers with errors: keep polling
            pass
        if pid is not None and not alive(pid):
            raise StartFailed(component, f"exited while waiting for {what}", log)
        if time.monotonic() > deadline:
            raise StartFailed(component, f"no {what} after {timeout:.0f}s", log)
        time.sleep(interval)


def stop(pid: int | None, started: int | None = None, *, pgid: int | None = None, sig: int = signal.SIGTERM,
         timeout: float = 15.0) -> bool:
    """Signal pid, wait for it to exit, SIGKILL it after timeout, then kill what is left of its group.

    Returns True if it had to use SIGKILL. A pid that no longer is the recorded process is left alone,
    and so is its group (the number may belong to someone else by now).
    """
    if not alive(pid, started):
        return False
    forced = False
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass
    if not _wait_gone(pid, started, timeout):
        forced = True
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        _wait_gone(pid, started, 5)
    kill_leftovers(pgid, started)
    return forced


def kill_leftovers(pgid: int | None, started: int | None) -> None:
    """SIGKILL what a group's leader left behind (same group, started no earlier than the leader)."""
    if not pgid or pgid <= 1 or pgid == os.getpgid(0):
        return
    leftovers = [m for m in group_members(pgid) if started is None or (start_time(m) or 0) >= started]
    for member in leftovers:
        try:
            os.kill(member, signal.SIGKILL)
        except ProcessLookupError:
            pass
    for member in leftovers:
        _wait_gone(member, None, 5)


def _wait_gone(pid: int, started: int | None, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while alive(pid, started):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True
