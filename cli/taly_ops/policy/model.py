"""What a rule sees and says: resources as Pulumi registers them (wire-name inputs), violations."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Literal

Severity = Literal["mandatory", "advisory"]


@dataclass(frozen=True)
class Subject:
    """One resource: its type token, logical name, inputs (camelCase wire names) and protect flag."""

    type: str
    name: str
    props: dict[str, Any]
    protect: bool = False


@dataclass(frozen=True)
class Violation:
    resource: str
    message: str


@dataclass
class StackView:
    environment: str
    resources: list[Subject]

    def of_type(self, *types: str) -> list[Subject]:
        return [r for r in self.resources if r.type in types]

    def keyed_by(self, type_token: str, key: str = "bucket") -> dict[Any, Subject]:
        """Companion resources (e.g. a bucket's public-access block) keyed by what they configure."""
        return {r.props.get(key): r for r in self.of_type(type_token)}

    @property
    def prod(self) -> bool:
        return self.environment == "prod"


Check = Callable[[StackView], Iterable[Violation]]


@dataclass(frozen=True)
class Rule:
    id: str
    severity: Severity
    description: str
    rationale: str
    check: Check = field(compare=False)


def rule(id: str, severity: Severity, description: str, rationale: str) -> Callable[[Check], Rule]:
    """Make a check function into a Rule; each rules module lists its rules in its own `RULES`.

    The id is stable: exemptions, CI and docs/policy-seeds.md refer to it.
    """

    def make(check: Check) -> Rule:
        return Rule(id, severity, description, rationale, check)

    return make
