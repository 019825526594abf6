"""A drill spec (runbooks/drills/*.yaml): invariants and smoke queries, validated by a typed model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ...errors import BadInput
from pydantic import BaseModel, ConfigDict, Field

from .. import manifest as manifest_model

SPEC = Path("runbooks") / "drills" / "cms.yaml"
SPEC_SHAPE = "a mapping with invariants: [{name, sql}] and smoke: [{name, sql, min_rows}]"


class _Query(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1)
    sql: str = Field(min_length=1)


class SmokeQuery(_Query):
    min_rows: int = Field(1, ge=0)


class DrillSpec(BaseModel):
    """runbooks/drills/*.yaml: invariants (SQL returning one count of violations) and smoke queries."""

    model_config = ConfigDict(extra="allow")
    name: str | None = None
    database: str | None = None
    invariants: list[_Query] = []
    smoke: list[SmokeQuery] = []


def load_spec(path: Path) -> dict[str, Any]:
    """The drill spec in path, validated (DrillSpec); BadInput (exit 2) naming the file and what is wrong."""
    from pydantic import ValidationError
    from taly_platform.safe_yaml import YamlError, load_file

    try:
        spec = load_file(path)
    except YamlError as exc:
        raise BadInput(f"cannot read the drill spec {exc}") from None
    if not isinstance(spec, dict):
        raise BadInput(f"{path} is not a drill spec: {SPEC_SHAPE}")
    try:
        return DrillSpec.model_validate(spec).model_dump(exclude_none=True)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        got = f" (got {manifest_model.shorten(err['input'])})" if err["type"] != "missing" else ""
        raise BadInput(f"{path}: {where}: {err['msg']}{got}", hint=f"a drill spec is {SPEC_SHAPE}") from None
