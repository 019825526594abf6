"""Typed reports of backups, drills and refreshes: what `-o json` prints, the bucket stores and renderers read.

Operations build a report while they run (a dict the steps fill in) and return it typed: the model
validates the shape once, in one place, and `to_json()` is what every output format starts from
(render.py's JSON, the tables in commands/, junit.py). Fields beyond those named here are kept
(`extra="allow"`): an RDS drill adds its snapshot and target details, a refresh its per-step results.
The shapes are documented in docs/operations.md; change them here and there together.
"""

from __future__ import annotations

from typing import Any, Literal, Union

Number = Union[int, float]  # as the operation gave it: 3600 stays 3600, 12.5 stays 12.5

from pydantic import BaseModel, ConfigDict


class _Report(BaseModel):
    model_config = ConfigDict(extra="allow")

    def to_json(self) -> dict[str, Any]:
        """The report as JSON-ready data, in the documented shape (field order as declared)."""
        return self.model_dump(mode="json", by_alias=True)


class DrillTargets(_Report):
    rpo_seconds: Number
    rto_seconds: Number
    source: str | None = None
    rpo_met: bool | None = None
    rto_met: bool | None = None  # None: not measured (the drill stopped before a verified restore)


class DrillVerification(_Report):
    files: list[dict[str, Any]] = []
    files_passed: bool | None = False  # None: an RDS restore has no files
    schema_passed: bool | None = None  # None: not checked
    schema_: dict[str, Any] = {}
    tables: list[dict[str, Any]] = []
    invariants: list[dict[str, Any]] = []
    smoke: list[dict[str, Any]] = []
    passed: bool = False

    model_config = ConfigDict(extra="allow", populate_by_name=True,
                              alias_generator=lambda name: "schema" if name == "schema_" else name)


class DrillReport(_Report):
    """`taly drill restore`: logical (a backup into a scratch PostgreSQL) or RDS (snapshot, pitr)."""

    drill_id: str
    environment: str
    status: Literal["passed", "failed", "dry-run"]
    backup_id: str | None
    restore_point_kind: Literal["logical", "snapshot", "pitr"]
    restore_point: str | None
    started_at: str
    finished_at: str | None
    source: dict[str, Any] | None
    target: dict[str, Any] | None
    rpo_seconds: Number | None
    rto_seconds: Number | None  # None: not measured
    targets: DrillTargets
    timings: dict[str, Number]
    spec: str
    verification: DrillVerification
    cleanup: dict[str, Any]
    error: str | None
    report_key: str | None = None  # where the report was stored in the bucket (None: it could not be)


class RefreshReport(_Report):
    """`taly data refresh` (status dry-run: what it would do, nothing changed)."""

    refresh_id: str
    status: Literal["ok", "failed", "dry-run"]
    dry_run: bool
    from_: str
    to: str
    backup_id: str
    restore_point: str
    source: dict[str, Any]
    anonymized: bool
    rules: dict[str, Any]
    subset: dict[str, Any] | None
    target: dict[str, Any]
    tables: dict[str, dict[str, Any]]
    anonymization: list[dict[str, Any]]
    verification: dict[str, Any]
    pii_scan: dict[str, Any]
    swapped: bool
    previous_database: str | None
    started_at: str
    finished_at: str | None
    timings: dict[str, Number]
    cleanup: dict[str, Any]
    error: str | None

    model_config = ConfigDict(extra="allow", populate_by_name=True,
                              alias_generator=lambda name: "from" if name == "from_" else name)


class BackupReport(_Report):
    """`taly backup create` (logical): the manifest stored as backups/<id>/manifest.json."""

    format: int
    backup_id: str
    environment: str
    created_at: str
    method: str
    source: dict[str, Any]
    snapshot: dict[str, Any]
    tool_versions: dict[str, str]
    files: list[dict[str, Any]]
    total_bytes: int
    tables: dict[str, dict[str, Any]]
    schema_: dict[str, Any]
    timings: dict[str, Number]
    completed_at: str
    duration_seconds: Number

    model_config = ConfigDict(extra="allow", populate_by_name=True,
                              alias_generator=lambda name: "schema" if name == "schema_" else name)


class SnapshotReport(_Report):
    """`taly backup create --kind snapshot`: the RDS snapshot of the primary, as RDS describes it."""

    snapshot_id: str
    type: str | None
    status: str | None
    created_at: str | None
    instance_id: str | None
    engine_version: str | None = None
    allocated_gib: int | None = None
    encrypted: bool | None = None
    arn: str | None = None
    created_by_taly: bool = False
    tags: dict[str, str] = {}
    kind: Literal["snapshot"] = "snapshot"
    backup_id: str
    environment: str
    requested_at: str | None
    duration_seconds: Number
