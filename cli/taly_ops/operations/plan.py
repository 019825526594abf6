"""Offline plan operations: plans per environment, summaries, and environment comparison."""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from taly_platform.config import ENVIRONMENTS, StackConfig

from ..errors import BadInput


def resolve_envs(env: str) -> list[str]:
    if env == "all":
        return list(ENVIRONMENTS)
    if env not in ENVIRONMENTS:
        raise BadInput(f"unknown environment '{env}'; known: {', '.join(ENVIRONMENTS)} (or all)")
    return [env]


def load_config(root: Path, env: str) -> StackConfig:
    from taly_platform.stackfile import StackConfigError, load_stack

    try:
        return load_stack(root, env)
    except StackConfigError as exc:
        raise BadInput(str(exc)) from None


def plans(root: Path, envs: list[str]):
    """Validate every stack file first (fail fast on bad config), then run each program."""
    from ..offline import plan as offline

    if len(envs) == 1:
        return [offline.run_program(load_config(root, envs[0]))]
    workers = offline.Workers()  # they start importing Pulumi now, while the stack files are read
    return workers.run([load_config(root, env) for env in envs])


def top_component(resource, by_urn: dict) -> str:
    """The name of the top-level component a resource belongs to (its own name when it has no parent)."""
    while resource.parent_urn:
        resource = by_urn[resource.parent_urn]
    return resource.name


def summary(plan) -> dict[str, dict[str, int]]:
    """Custom resources per top-level component, counted by type."""
    by_urn = {r.urn: r for r in plan.resources}
    groups: dict[str, Counter] = defaultdict(Counter)
    for r in plan.resources:
        if r.custom:
            groups[top_component(r, by_urn)][r.type] += 1
    return {k: dict(sorted(v.items())) for k, v in groups.items()}


def _flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(data, dict):
        out: dict[str, Any] = {}
        for k, v in data.items():
            out |= _flatten(v, f"{prefix}.{k}" if prefix else k)
        return out
    return {prefix: data}


def comparable_envs(a: str, b: str) -> tuple[str, str]:
    """The two environments of `--compare`, checked before anything runs: known, not 'all', not the same."""
    for env in (a, b):
        if env == "all":
            raise BadInput("--compare takes two environment names, not 'all'")
        resolve_envs(env)
    if a == b:
        raise BadInput(f"--compare takes two different environments, got '{a}' twice; "
                       f"known: {', '.join(ENVIRONMENTS)}")
    return a, b


def compare(root: Path, a: str, b: str) -> dict[str, Any]:
    """The settings and the resource counts that differ between two environments' plans."""
    pa, pb = plans(root, [a, b])
    return {"environments": [a, b], "settings": compare_settings(pa.config, pb.config),
            "resources": compare_resources(pa, pb)}


def compare_settings(a: StackConfig, b: StackConfig) -> list[dict[str, Any]]:
    """Settings whose values differ between two environments, as `key`, `a`, `b` rows."""
    fa = _flatten(a.model_dump(by_alias=True, mode="json"))
    fb = _flatten(b.model_dump(by_alias=True, mode="json"))
    rows = []
    for key in sorted(set(fa) | set(fb)):
        if key == "environment":
            continue
        if fa.get(key) != fb.get(key):
            rows.append({"setting": key, a.environment: fa.get(key), b.environment: fb.get(key)})
    return rows


def compare_resources(pa, pb) -> list[dict[str, Any]]:
    ca = Counter(r.type for r in pa.resources if r.custom)
    cb = Counter(r.type for r in pb.resources if r.custom)
    return [
        {"type": t, pa.environment: ca.get(t, 0), pb.environment: cb.get(t, 0)}
        for t in sorted(set(ca) | set(cb))
        if ca.get(t, 0) != cb.get(t, 0)
    ]
