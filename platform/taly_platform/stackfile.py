"""Reading `stacks/Pulumi.<env>.yaml` into a StackConfig, with errors that name file, key and line.

Used by the offline plan and the CLI. Under `pulumi up` the same mapping comes from
`pulumi.Config` (see `program.py`) and goes through the same `config_from_mapping`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from . import safe_yaml
from .config import ENVIRONMENTS, PROJECT, STACK_KEYS, StackConfig
from .quoting import quote

MESSAGE_LIMIT = 300  # a validator's message can interpolate a value; never let one flood a terminal

_FIELD_FOR_KEY = {key: field for field, key in STACK_KEYS.items()}


@dataclass
class StackConfigError(Exception):
    """A stack file that cannot become a StackConfig; every field is for the user's eyes."""

    file: str
    key: str | None
    message: str
    line: int | None = None
    value: Any = None

    def __str__(self) -> str:
        where = self.file + (f":{self.line}" if self.line else "")
        key = f" key '{self.key}'" if self.key else ""
        given = "" if self.value is None else f" (given: {quote(self.value)})"
        message = self.message if len(self.message) <= MESSAGE_LIMIT else self.message[:MESSAGE_LIMIT] + "…"
        return f"{where}:{key} {message}{given}"


def stacks_dir(project_root: Path) -> Path:
    return project_root / "stacks"


def stack_file(project_root: Path, env: str) -> Path:
    return stacks_dir(project_root) / f"Pulumi.{env}.yaml"


def config_from_mapping(env: str, mapping: dict[str, Any], source: str = "<config>") -> StackConfig:
    """Validate a stack's `config:` mapping (keys like `taly:network`) into a StackConfig."""
    data: dict[str, Any] = {"environment": env}
    for key, value in mapping.items():
        namespace, _, _ = key.partition(":")
        if key in _FIELD_FOR_KEY:
            data[_FIELD_FOR_KEY[key]] = value
        elif namespace == PROJECT:
            raise StackConfigError(
                source, key, f"unknown key; allowed: {sorted(_FIELD_FOR_KEY)}", value=None
            )
        # Other namespaces (aws:defaultTags, pulumi:...) belong to their providers.
    try:
        return StackConfig.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = [str(p) for p in err["loc"]]
        key = STACK_KEYS.get(loc[0], loc[0]) if loc else None
        path = [key, *loc[1:]] if key else []
        given = err.get("input") if err["type"] not in ("missing",) else None
        if isinstance(given, dict):
            given = None
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "missing":
            msg = "is required"
        elif err["type"] == "extra_forbidden":
            msg = "is not a known setting"
        raise StackConfigError(source, ".".join(path) or None, msg, value=given) from None


def load_stack(project_root: Path, env: str) -> StackConfig:
    """Load and validate one environment's stack file."""
    if env not in ENVIRONMENTS:
        raise StackConfigError(
            "--env", None, f"unknown environment '{env}'; known: {', '.join(ENVIRONMENTS)}"
        )
    path = stack_file(project_root, env)
    shown = str(path.relative_to(project_root)) if path.is_relative_to(project_root) else str(path)
    if not path.exists() and not path.is_symlink():
        raise StackConfigError(shown, None, "stack file not found")
    try:
        doc, node = safe_yaml.parse(safe_yaml.read_text(path, shown), shown)
    except safe_yaml.YamlError as exc:
        raise StackConfigError(shown, None, exc.problem, line=exc.line) from None
    if not isinstance(doc, dict) or not isinstance(doc.get("config"), dict):
        raise StackConfigError(shown, "config", "the file must hold a 'config:' mapping", line=1)
    try:
        return config_from_mapping(env, doc["config"], shown)
    except StackConfigError as exc:
        exc.line = _line_of(node, ["config", *(_split_key(exc.key) if exc.key else [])])
        raise


def _split_key(key: str) -> list[str]:
    # "taly:database.readReplicas" -> ["taly:database", "readReplicas"]; list indexes stay strings.
    head, _, rest = key.partition(".")
    return [head, *rest.split(".")] if rest else [head]


def _line_of(node: yaml.Node | None, path: list[str]) -> int | None:
    """1-based line of the deepest node along `path` that exists in the YAML tree."""
    line = node.start_mark.line + 1 if node is not None else None
    for part in path:
        if isinstance(node, yaml.MappingNode):
            match = next((v for k, v in node.value if getattr(k, "value", None) == part), None)
            if match is None:
                # Unknown key: point at the key itself when it is there.
                return line
            key_node = next(k for k, v in node.value if v is match)
            line, node = key_node.start_mark.line + 1, match
        elif isinstance(node, yaml.SequenceNode) and part.isdigit() and int(part) < len(node.value):
            node = node.value[int(part)]
            line = node.start_mark.line + 1
        else:
            return line
    return line
