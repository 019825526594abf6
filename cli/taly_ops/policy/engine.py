"""Evaluate the rules over a stack, apply the environment's exemptions, decide the verdict."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Literal

from taly_platform.config import PolicyExemption

from .model import Rule, StackView, Violation
from .pack import all_rules

Status = Literal["pass", "fail", "exempt"]


@dataclass
class RuleResult:
    id: str
    severity: str
    description: str
    status: Status
    violations: list[Violation] = field(default_factory=list)
    exemption: str | None = None  # the reason, when exempt


@dataclass
class PolicyReport:
    environment: str
    results: list[RuleResult]

    @property
    def passed(self) -> bool:
        return not any(r.status == "fail" and r.severity == "mandatory" for r in self.results)

    def to_json(self) -> dict:
        return {
            "environment": self.environment,
            "passed": self.passed,
            "summary": {s: sum(1 for r in self.results if r.status == s) for s in ("pass", "fail", "exempt")},
            "results": [asdict(r) for r in self.results],
        }


def exempted(violations: list[Violation], rule: Rule, exemptions: list[PolicyExemption]) -> tuple[list[Violation], str | None]:
    """Violations left after the exemptions for this rule, and the reason when any applied."""
    mine = [e for e in exemptions if e.rule == rule.id]
    if not mine:
        return violations, None
    left = [v for v in violations if not any(not e.resources or v.resource in e.resources for e in mine)]
    return left, "; ".join(e.reason for e in mine)


def evaluate(view: StackView, exemptions: list[PolicyExemption] | None = None, rules: list[Rule] | None = None) -> PolicyReport:
    results = []
    for rule in rules or all_rules():
        violations = list(rule.check(view))
        left, reason = exempted(violations, rule, exemptions or [])
        if not violations:
            status: Status = "pass"
        elif not left:
            status = "exempt"
        else:
            status = "fail"
        results.append(RuleResult(rule.id, rule.severity, rule.description, status, left if left else violations,
                                  reason if violations and reason else None))
    return PolicyReport(view.environment, results)
