"""Removing scratch PostgreSQL instances: a drill's teardown, `taly drill reap`, and `taly local down`'s reap first.

Reaping needs only the registry: it works whether or not the estate (or the bucket) is up.
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path
from typing import Any

from ..backup import now
from ...environment import Environment
from ..steps import Progress, quiet
from .registry import DRILLS_DIR, SCRATCH_PREFIXES, ScratchHost, registry, registry_entries


def remove(entry: dict[str, Any]) -> dict[str, Any]:
    """Stop the entry's instance (if it still is the recorded process) and delete its directory."""
    from ...local import scratch_postgres, supervisor

    d = Path(entry["dir"])
    pid, started, pgid = entry.get("pid"), entry.get("start_time"), entry.get("pgid")
    if not supervisor.alive(pid, started):
        # Not recorded (killed between spawn and registering) or gone: ask the data directory.
        pid = _postmaster(d / "data")
        started, pgid = (supervisor.start_time(pid), supervisor.pgid_of(pid)) if pid else (None, None)
    was_running = supervisor.alive(pid, started)
    forced = scratch_postgres.stop(pid, started, pgid) if was_running else False
    stopped = not supervisor.alive(pid, started)
    shutil.rmtree(d, ignore_errors=True)
    return {"instance_was_running": was_running, "instance_stopped": stopped, "killed": forced,
            "dir_removed": not d.exists()}


def _postmaster(data_dir: Path) -> int | None:
    """The pid in data_dir/postmaster.pid if that process is a postgres serving data_dir."""
    try:
        pid = int((data_dir / "postmaster.pid").read_text().split("\n", 1)[0])
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (OSError, ValueError):
        return None
    return pid if str(data_dir).encode() in cmdline and cmdline[0].endswith(b"postgres") else None


def teardown(env: Environment, drill_id: str, keep: bool, progress: Progress,
              spawned: dict[str, Any] | None = None) -> dict[str, Any]:
    with registry(env) as reg:
        entry = reg["drills"].get(drill_id)
        if entry is None:
            return {"kept": False, "instance_stopped": True, "dir_removed": True}
        if spawned and not entry.get("pid"):  # interrupted before the registry heard of it
            entry.update(spawned)
        if keep and entry.get("pid"):  # nothing to keep when no instance was started
            entry["owner_pid"] = None  # nobody owns it now: `reap` may remove it
            progress(f"kept {drill_id}: postgresql://taly@127.0.0.1:{entry['port']}/ (data in {entry['dir']}); "
                     f"remove it with `taly drill reap --env {env.name}`")
            return {"kept": True, "instance_stopped": False, "dir_removed": False, "port": entry["port"],
                    "dir": entry["dir"]}
        result = remove(entry)
        if result["instance_stopped"] and result["dir_removed"]:
            del reg["drills"][drill_id]
        progress(f"scratch instance {drill_id} removed" if result["dir_removed"] else
                 f"warning: could not fully remove {drill_id}: {result}")
        return {"kept": False, **result}


def reap(env: Environment | ScratchHost, older_than_hours: float = 0.0, progress: Progress = quiet) -> dict[str, Any]:
    """Remove drill leftovers: registry entries whose owner is gone, older than the given age.

    Needs only the registry in env.state_dir: it works whether or not the estate (or the bucket) is up.
    """
    from ... import audit
    from ...local import supervisor

    result: dict[str, Any] = {"environment": env.name, "reaped": [], "skipped": [], "unregistered_dirs": []}
    cutoff = now() - dt.timedelta(hours=older_than_hours)
    reaped, skipped = result["reaped"], result["skipped"]
    with registry(env) as reg:
        for drill_id, entry in list(reg["drills"].items()):
            registered = dt.datetime.fromisoformat(entry["registered_at"])
            if registered > cutoff:
                skipped.append({"drill_id": drill_id, "reason": f"younger than {older_than_hours:g}h"})
                continue
            if entry.get("owner_pid") and supervisor.alive(entry["owner_pid"], entry.get("owner_start_time")):
                skipped.append({"drill_id": drill_id, "owner_pid": entry["owner_pid"],
                                "reason": f"its drill (pid {entry['owner_pid']}) is still running"})
                continue
            running = supervisor.alive(entry.get("pid"), entry.get("start_time"))
            exists = Path(entry["dir"]).exists()
            removed = remove(entry) if (running or exists) else {"instance_was_running": False, "dir_removed": True}
            del reg["drills"][drill_id]
            if running or exists:
                reaped.append({"drill_id": drill_id, "port": entry.get("port"), "dir": entry["dir"], **removed})
                progress(f"reaped {drill_id} (instance {'stopped' if running else 'not running'}, dir removed)")
    # Directories no registry entry knows of (a drill killed between mkdir and registering cannot happen,
    # but a hand-deleted registry can): listed, not deleted.
    known = set(registry_entries(env))
    result["unregistered_dirs"] = sorted(str(p) for p in (env.state_dir / DRILLS_DIR).iterdir()
                                         if p.is_dir() and p.name.startswith(SCRATCH_PREFIXES) and p.name not in known)
    audit.record(env.state_dir, "drill.reap", env.name, inputs={"older_than_hours": older_than_hours},
                 outcome="ok", after={"reaped": [r["drill_id"] for r in reaped]})
    return result


def reap_before_down(state_dir: Path, progress: Progress = quiet) -> dict[str, Any]:
    """What `taly local down` does first: remove the estate's drill leftovers, and say what it must leave.

    A drill still running keeps its scratch instance (it tears it down itself when it fails for want of
    the estate); the caller is told which, and how to remove them should that drill be killed.
    """
    if not (state_dir / DRILLS_DIR).is_dir():
        return {"environment": "local", "reaped": [], "skipped": [], "unregistered_dirs": []}  # no drill ever ran
    result = reap(ScratchHost("local", state_dir), progress=progress)
    for s in result["skipped"]:
        if s.get("owner_pid"):
            progress(f"left {s['drill_id']}: its drill (pid {s['owner_pid']}) is still running and removes its "
                     f"scratch instance when it ends; if it is killed: taly drill reap --env local "
                     f"--state-dir {state_dir}")
    return result
