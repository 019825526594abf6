"""Restore drills: a backup restored into a fresh scratch instance, verified, timed against RPO and RTO, removed.

The package's public API (what commands, `taly data refresh`, backups and `taly local down` use):

- run: `restore_from` (routes to the logical or the RDS path), `reap_environment`;
- logical / rds: the two paths; report: the one report skeleton and the verdict; verification: the checks;
- registry: the scratch-instance registry (register, start, check the directory); scratch: teardown and
  reap on this machine (`teardown`, `reap`, `reap_before_down`); rds_reap: scratch RDS instances;
- spec: the drill spec; history: past drills.

The guarded run itself (signals, cleanup, steps, the hook and the clock) is operations/steps.py; the JUnit
renderer is taly_ops/junit.py. Reports go to drills/<drill_id>.json in the backups bucket.
"""

from .history import history
from .registry import (DRILLS_DIR, SCRATCH_PREFIXES, ScratchHost, check_scratch_dir, drills_dir, register_scratch,
                       registry_entries, start_scratch)
from .run import DrillRequest, reap_environment, restore_from
from .scratch import reap, reap_before_down, teardown
from .spec import SPEC, DrillSpec, load_spec
from .verification import download_verified, run_invariant, source_last_write, verify_database

__all__ = ["DRILLS_DIR", "DrillRequest", "SCRATCH_PREFIXES", "SPEC", "DrillSpec", "ScratchHost", "check_scratch_dir",
           "download_verified", "drills_dir", "history", "load_spec", "reap", "reap_before_down", "reap_environment",
           "register_scratch", "registry_entries", "restore_from", "run_invariant", "source_last_write",
           "start_scratch", "teardown", "verify_database"]
