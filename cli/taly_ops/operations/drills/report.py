"""A drill's report: one skeleton for the logical and the RDS path, and the verdict (what its audit outcome says)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from ...errors import Unreachable
from ..backup import DRILLS_PREFIX, iso, now
from ..reports import DrillReport
from ..steps import Outcome, Steps
from ...environment import Environment


def new_report(env: Environment, drill_id: str, started: dt.datetime, steps: Steps, spec_path: Path,
               **fields: Any) -> dict[str, Any]:
    """The one skeleton of a drill report (the JSON shape docs/operations.md describes), logical and RDS alike.

    fields fill it in (backup_id, restore_point_kind, restore_point, source, target, rpo_seconds, and what a
    path adds: source_last_write, snapshot_id); `verification` entries override the verification's defaults.
    Until a check runs its result is None: a drill that stops early reports it as not run, not failed.
    """
    verification = {"files": [], "files_passed": False, "schema_passed": None, "schema": {}, "tables": [],
                    "invariants": [], "smoke": [], "passed": False} | fields.pop("verification", {})
    targets = env.targets
    report: dict[str, Any] = {
        "drill_id": drill_id, "environment": env.name, "status": "failed", "backup_id": None,
        "restore_point_kind": "logical", "restore_point": None, "started_at": iso(started), "finished_at": None,
        "source": None, "target": None, "rpo_seconds": None, "rto_seconds": None,
        "targets": {"rpo_seconds": targets["rpo_minutes"] * 60, "rto_seconds": targets["rto_minutes"] * 60,
                    "source": targets.get("source"), "rpo_met": None, "rto_met": None},
        "timings": steps.timings, "spec": str(spec_path), "verification": verification, "cleanup": {}, "error": None,
    }
    unknown = set(fields) - set(report) - {"source_last_write", "snapshot_id"}
    if unknown:
        raise TypeError(f"not drill report fields: {sorted(unknown)}")
    return report | fields


def dry_run_report(report: dict[str, Any], would: list[str], steps: Steps) -> DrillReport:
    """A drill resolved and checked but not run: status dry-run, what it would do; nothing registered or stored."""
    report.update(status="dry-run", would=would)
    report["timings"]["total_seconds"] = round(steps.elapsed(), 2)
    return DrillReport.model_validate(report)


def finish(env: Environment, report: dict[str, Any], *, steps: Steps, before: dict[str, Any],
           interrupted: bool) -> Outcome:
    """The verdict (verification, RPO and RTO against their targets), the report to the bucket; the audit outcome."""
    progress = steps.progress
    report["timings"]["total_seconds"] = round(steps.elapsed(), 2)
    report["finished_at"] = iso(now())
    ver = report["verification"]
    tg = report["targets"]
    tg["rpo_met"] = report["rpo_seconds"] is not None and report["rpo_seconds"] <= tg["rpo_seconds"]
    # Not measured (the drill stopped before a verified restore): None, not "missed".
    tg["rto_met"] = None if report["rto_seconds"] is None else report["rto_seconds"] <= tg["rto_seconds"]
    passed = bool(ver["passed"] and tg["rpo_met"] and tg["rto_met"]) and not report["error"]
    report["status"] = "passed" if passed else "failed"
    if report["cleanup"].get("kept"):
        report["cleanup"].setdefault("remove_with", f"taly drill reap --env {env.name}")
    drill_id = report["drill_id"]
    try:
        env.store.put_json(f"{DRILLS_PREFIX}{drill_id}.json", report)
        report["report_key"] = f"s3://{env.store.bucket}/{DRILLS_PREFIX}{drill_id}.json"
    except (Unreachable, KeyError) as exc:
        report["report_key"] = None
        progress(f"warning: the drill report could not be stored in the bucket: {exc}")
    return Outcome("interrupted" if interrupted else report["status"], before=before,
                   after={"drill_id": drill_id, "rpo_seconds": report["rpo_seconds"],
                          "rto_seconds": report["rto_seconds"], "cleanup": report["cleanup"],
                          "report": report.get("report_key")},
                   detail={"error": report["error"]} if report["error"] else None)
