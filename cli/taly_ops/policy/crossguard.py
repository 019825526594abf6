"""The same rules as a Pulumi CrossGuard pack: each rule a StackValidationPolicy.

`policy/__main__.py` serves them to `pulumi preview --policy-pack policy`. The environment is the
stack's `environment` tag (every resource carries it); its exemptions come from the same stack
file `taly policy check` reads, so the two runners agree.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any, Callable

from pulumi_policy import EnforcementLevel, StackValidationArgs, StackValidationPolicy

from .engine import exempted
from .model import Rule, StackView, Subject
from .pack import all_rules

PROJECT_ROOT = Path(__file__).resolve().parents[3]


def environment_of(resources: list[Any]) -> str:
    """The stack's environment, from the `environment` tag its resources carry."""
    tags = Counter(
        (r.props.get("tags") or {}).get("environment")
        for r in resources if isinstance(r.props.get("tags"), dict)
    )
    tags.pop(None, None)
    return tags.most_common(1)[0][0] if tags else "unknown"


def view_from(args: StackValidationArgs) -> StackView:
    return StackView(
        environment_of(args.resources),
        [Subject(r.resource_type, r.name, dict(r.props), bool(r.opts.protect) if r.opts else False) for r in args.resources],
    )


def _exemptions(environment: str, root: Path) -> list:
    from taly_platform.stackfile import load_stack

    if environment not in ("dev", "staging", "prod"):
        return []
    return list(load_stack(root, environment).policy.exemptions)


def _validator(rule: Rule, root: Path) -> Callable[[StackValidationArgs, Callable[..., None]], None]:
    def validate(args: StackValidationArgs, report_violation: Callable[..., None]) -> None:
        view = view_from(args)
        urns = {r.name: r.urn for r in args.resources}
        left, _ = exempted(list(rule.check(view)), rule, _exemptions(view.environment, root))
        for v in left:
            report_violation(f"{v.resource}: {v.message}", urns.get(v.resource))

    return validate


def build_policies(root: Path = PROJECT_ROOT) -> list[StackValidationPolicy]:
    return [
        StackValidationPolicy(
            name=rule.id,
            description=f"{rule.description} {rule.rationale}",
            validate=_validator(rule, root),
            enforcement_level=EnforcementLevel.MANDATORY if rule.severity == "mandatory" else EnforcementLevel.ADVISORY,
        )
        for rule in all_rules()
    ]
