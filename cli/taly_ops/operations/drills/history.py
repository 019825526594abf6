"""Past drills, from the reports in the bucket (untrusted: a damaged one is listed as damaged)."""

from __future__ import annotations

from typing import Any

from ..backup import DRILLS_PREFIX
from ...environment import Environment
from .. import manifest as manifest_model


def history(env: Environment) -> list[dict[str, Any]]:
    """Past drills from the reports in the bucket, oldest first; a report that cannot be read is listed as damaged."""
    env.store.check()
    out = []
    for obj in env.store.keys(DRILLS_PREFIX):
        key = obj.get("Key", "")
        if not key.endswith(".json"):
            continue
        try:
            r = env.store.get_json(key)
        except KeyError:
            continue
        except ValueError as exc:
            r = {"error": f"s3://{env.store.bucket}/{key}: {manifest_model.not_json(exc)}"}
        if not isinstance(r, dict):
            r = {"error": f"s3://{env.store.bucket}/{key}: not a JSON object"}
        damaged = "drill_id" not in r
        out.append({"drill_id": _text(r.get("drill_id")) or key.removeprefix(DRILLS_PREFIX).removesuffix(".json"),
                    "backup_id": _text(r.get("backup_id")), "status": "damaged" if damaged else _text(r.get("status")),
                    "restore_point_kind": _text(r.get("restore_point_kind")) or "logical",
                    "restore_point": _text(r.get("restore_point")), "started_at": _text(r.get("started_at")),
                    "rpo_seconds": _number(r.get("rpo_seconds")), "rto_seconds": _number(r.get("rto_seconds")),
                    "targets": r.get("targets") if isinstance(r.get("targets"), dict) else None,
                    "verification_passed": (r.get("verification") or {}).get("passed")
                    if isinstance(r.get("verification"), dict) else None,
                    "error": _text(r.get("error"))})
    return sorted(out, key=lambda r: r["started_at"] or "")


def _text(value: Any) -> str | None:
    return None if value is None else str(value)[:300]


def _number(value: Any) -> float | None:
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None
