"""Rules over alerting: the seeds' alert thresholds in Prometheus, and CloudWatch alarms on the managed stores."""

from __future__ import annotations

import re

from taly_platform.safe_yaml import YamlError, loads

from .model import Violation, rule
from .resources import ALARM, RDS, REDIS, number, rds_primaries

RULE_NAMESPACE = "aws:amp/ruleGroupNamespace:RuleGroupNamespace"

# alert -> (comparison, the seeds' threshold): an alert may be stricter, never looser.
SEED_ALERTS: dict[str, tuple[str, float]] = {
    "HighErrorRate": (">", 0.01),          # error rate > 1 %: warning
    "CriticalErrorRate": (">", 0.05),      # error rate > 5 %: page
    "HighLatencyP95": (">", 0.5),          # p95 > 500 ms
    "HighLatencyP99": (">", 3),            # p99 > 3 s
    "PodRestarting": (">", float("inf")),  # pod restarts (any threshold; the seeds say > 0 an hour)
    "ContainerCpuHigh": (">", 0.8),        # CPU > 80 %
    "ContainerMemoryHigh": (">", 0.9),     # memory > 90 %
    "DiskSpaceLow": ("<", 0.1),            # low disk: < 10 % free
    "DatabaseReplicationLag": (">", 10),   # replication lag > 10 s
}
_THRESHOLD = re.compile(r"([<>])=?\s*([0-9.]+)\s*$")


def _alerts(text: str, source: str) -> dict[str, str]:
    doc = loads(text, source) or {}
    return {r["alert"]: str(r.get("expr", "")) for g in doc.get("groups") or [] for r in g.get("rules") or []
            if isinstance(r, dict) and "alert" in r}


def _loose(comparison: str, seed: float, expr: str) -> str | None:
    """Why `expr` does not fire where the seeds ask, or None."""
    found = _THRESHOLD.search(re.sub(r"#.*", "", expr).strip())
    if not found or found.group(1) != comparison:
        return f"no final '{comparison} threshold' comparison in {expr.strip()[:60]!r}"
    value = float(found.group(2))
    if (comparison == ">" and value > seed) or (comparison == "<" and value < seed):
        return f"fires {comparison} {value:g}, looser than the seeds' {seed:g}"
    return None


@rule("alerts-seed-thresholds", "mandatory", "Prometheus holds the seeds' alerts, at their thresholds or stricter.",
      "The seeds' alerting: error rate > 1 % warn and > 5 % page, p95 > 500 ms, p99 > 3 s, pod restarts, CPU > 80 %, "
      "memory > 90 %, low disk, replication lag > 10 s.")
def alerts_seed_thresholds(view):
    namespaces = view.of_type(RULE_NAMESPACE)
    if not namespaces:
        yield Violation("(stack)", "no Prometheus alert rules")
    alerts: dict[str, str] = {}
    for ns in namespaces:
        try:
            alerts |= _alerts(str(ns.props.get("data") or ""), ns.name)
        except (YamlError, AttributeError, TypeError) as exc:
            yield Violation(ns.name, f"its alert rules do not read: {exc}")
    for name, (comparison, seed) in SEED_ALERTS.items():
        if name not in alerts:
            if namespaces:
                yield Violation(namespaces[0].name, f"no {name} alert")
            continue
        problem = _loose(comparison, seed, alerts[name])
        if problem:
            yield Violation(namespaces[0].name, f"{name}: {problem}")


def _alarm_on(alarms, metric: str, instance_key: str, instance: str) -> list:
    return [a for a in alarms if a.props.get("metricName") == metric
            and (a.props.get("dimensions") or {}).get(instance_key) == instance]


@rule("alarms-seed-thresholds", "mandatory",
      "CloudWatch alarms watch every replica's lag (> 10 s), the primary's CPU (> 80 %) and free storage, "
      "and each Redis node's memory (> 90 %), and notify someone.",
      "The seeds' alerts on what only CloudWatch sees of RDS and ElastiCache: replication lag > 10 s, CPU > 80 %, "
      "low disk, memory > 90 %.")
def alarms_seed_thresholds(view):
    alarms = view.of_type(ALARM)
    for a in alarms:
        if not a.props.get("alarmActions"):
            yield Violation(a.name, "notifies nobody (no alarmActions)")
    checks = []
    for db in rds_primaries(view):
        ident = db.props.get("identifier")
        checks += [(db.name, "CPUUtilization", "DBInstanceIdentifier", ident, 80),
                   (db.name, "FreeStorageSpace", "DBInstanceIdentifier", ident, None)]
    for replica in view.of_type(RDS):
        if replica.props.get("replicateSourceDb"):
            checks.append((replica.name, "ReplicaLag", "DBInstanceIdentifier", replica.props.get("identifier"), 10))
    for rg in view.of_type(REDIS):
        group = rg.props.get("replicationGroupId")
        for member in range(1, int(number(rg.props.get("numCacheClusters"), 1)) + 1):
            checks.append((rg.name, "DatabaseMemoryUsagePercentage", "CacheClusterId", f"{group}-{member:03d}", 90))
    for subject, metric, key, instance, ceiling in checks:
        found = _alarm_on(alarms, metric, key, instance)
        if not found:
            yield Violation(subject, f"no {metric} alarm on {instance}")
        elif ceiling is not None and min(number(a.props.get("threshold"), float("inf")) for a in found) > ceiling:
            yield Violation(subject, f"{metric} alarm on {instance} fires above {ceiling} only")


RULES = [
    alerts_seed_thresholds,
    alarms_seed_thresholds,
]
