"""The policy rules, and their check over the offline plan of one or more environments."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import BadInput
from ..policy.model import StackView, Subject
from ..policy.pack import all_rules

if TYPE_CHECKING:
    from ..policy.engine import PolicyReport


def rules() -> list[dict[str, Any]]:
    """Every rule: id, severity (mandatory fails the check; advisory only reports), description, rationale."""
    return [{"id": r.id, "severity": r.severity, "description": r.description, "rationale": r.rationale}
            for r in all_rules()]


def view_of(plan) -> StackView:
    return StackView(plan.environment, [Subject(r.type, r.name, r.inputs, r.protect) for r in plan.resources if r.custom])


def check(root: Path, envs: list[str]) -> list[PolicyReport]:
    from ..policy.engine import evaluate  # these two load the stack config's model: listing the rules does not
    from . import plan as plan_ops

    known = {r.id for r in all_rules()}
    for env in envs:
        config = plan_ops.load_config(root, env)
        for e in config.policy.exemptions:
            if e.rule not in known:
                raise BadInput(f"stacks/Pulumi.{env}.yaml: taly:policy exempts unknown rule '{e.rule}'; see `taly policy list`")
    return [evaluate(view_of(p), p.config.policy.exemptions) for p in plan_ops.plans(root, envs)]
