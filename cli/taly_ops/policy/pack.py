"""The policy pack: every rules module's `RULES`, in one order, ids unique.

Rules modules import only `model`; this module is the one place that knows them all, so nothing
registers by import side effect and nothing imports back.
"""

from __future__ import annotations

from functools import cache

from . import rules_data, rules_k8s, rules_network, rules_observability, rules_recovery, rules_security, rules_storage
from .model import Rule

MODULES = (rules_storage, rules_data, rules_recovery, rules_security, rules_network, rules_observability, rules_k8s)


@cache
def _rules() -> tuple[Rule, ...]:
    rules = tuple(r for module in MODULES for r in module.RULES)
    seen: set[str] = set()
    for r in rules:
        if r.id in seen:
            raise ValueError(f"duplicate policy rule id {r.id}")
        seen.add(r.id)
    return rules


def all_rules() -> list[Rule]:
    return list(_rules())
