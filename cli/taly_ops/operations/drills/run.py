"""What the drill commands ask for, routed here: the logical or the RDS path, the local registry or RDS too."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...errors import BadInput
from ..steps import Progress, quiet
from ..reports import DrillReport
from .registry import ScratchHost
from .spec import load_spec
from .scratch import reap


def reap_environment(env_name: str, state_dir: Path | None = None, *, older_than_hours: float = 0.0,
                     force: bool = False, progress: Progress = quiet) -> dict[str, Any]:
    """`taly drill reap`: local needs only the drill registry (the estate may be down); dev/staging/prod also RDS."""
    from ...environment import LOCAL, check_name, resolve

    if check_name(env_name) == LOCAL:
        from ...local.state import resolve_state_dir

        return reap(ScratchHost("local", resolve_state_dir(state_dir)), older_than_hours, progress=progress)
    from .rds_reap import reap as reap_rds

    return reap_rds(resolve(env_name, state_dir), older_than_hours, progress=progress, force=force)


@dataclass(frozen=True)
class DrillRequest:
    """What `taly drill restore` was asked for: the source (latest, a backup id, snapshot, pitr, a snapshot id)."""

    source: str = "latest"
    keep: bool = False
    port: int | None = None
    spec_path: Path | None = None
    wait_minutes: float | None = None
    dry_run: bool = False


def restore_from(env_name: str, request: DrillRequest, *, state_dir: Path | None = None,
                 progress: Progress = quiet) -> DrillReport:
    """`taly drill restore`: validate the flags, plan (resolve the backup or restore point, check the target),
    then run on the logical or, in dev/staging/prod, the RDS path (snapshot, pitr, a snapshot id); a dry run
    stops after the plan. Flags that do not fit the path are exit 2 before anything is resolved."""
    from ...environment import LOCAL, check_name, resolve
    from ..rds_backup import require_cloud
    from .logical import MIN_PORT
    from .logical import restore as restore_logical
    from .rds import KEYWORDS, WAIT_MINUTES, is_rds_source
    from .rds import restore as restore_rds

    source, port = request.source, request.port
    check_name(env_name)
    if env_name == LOCAL and source in KEYWORDS:
        require_cloud(env_name, f"--from {source}")
    on_rds = is_rds_source(source) and env_name != LOCAL
    if on_rds and port is not None:
        raise BadInput("--port is for logical drills (a scratch PostgreSQL on this machine); an RDS drill's "
                       "instance listens where RDS puts it")
    if port is not None and not MIN_PORT <= port <= 65535:
        raise BadInput(f"--port {port}: a scratch PostgreSQL listens on {MIN_PORT}-65535")
    if request.spec_path is not None:
        load_spec(request.spec_path)  # a bad --spec is exit 2 before the environment is even looked at
    env = resolve(env_name, state_dir)
    if on_rds:
        return restore_rds(env, source, keep=request.keep, spec_path=request.spec_path, progress=progress,
                           wait_minutes=request.wait_minutes or WAIT_MINUTES, dry_run=request.dry_run)
    return restore_logical(env, source, keep=request.keep, port=port, spec_path=request.spec_path,
                           progress=progress, dry_run=request.dry_run)
