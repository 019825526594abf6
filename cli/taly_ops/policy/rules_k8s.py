"""Rules over the Kubernetes objects of a stack (from the charts, rendered into the plan)."""

from __future__ import annotations

import json
from typing import Any, Iterable

from .model import Subject, Violation, rule
from .resources import DEPLOYMENT, HPA, INGRESS, PDB, number

PROD_MIN_REPLICAS, PROD_MAX_REPLICAS = 3, 20  # the seeds' HPA 3-20
TARGETS = {"cpu": 70, "memory": 80}  # the seeds' HPA targets (% of requests)
CHECK_PERIOD_SECONDS, FAILED_CHECKS = 10, 3  # the seeds: health checks every 10 s; 3 failed checks
TLS12_POLICIES = ("ELBSecurityPolicy-TLS13-", "ELBSecurityPolicy-TLS-1-2-", "ELBSecurityPolicy-FS-1-2-")


def _pod(d: Subject) -> dict[str, Any]:
    return ((d.props.get("spec") or {}).get("template") or {}).get("spec") or {}


def _containers(d: Subject) -> Iterable[tuple[dict[str, Any], dict[str, Any]]]:
    pod = _pod(d)
    for c in (pod.get("containers") or []) + (pod.get("initContainers") or []):
        yield pod, c


def _label(d: Subject) -> str:
    return (d.props.get("metadata") or {}).get("name") or d.name


def _spec(r: Subject) -> dict[str, Any]:
    return r.props.get("spec") or {}


@rule("k8s-no-privileged", "mandatory", "No privileged containers and no privilege escalation.",
      "A privileged container is root on the node.")
def _privileged(view):
    for d in view.of_type(DEPLOYMENT):
        for _, c in _containers(d):
            sc = c.get("securityContext") or {}
            if sc.get("privileged") or sc.get("allowPrivilegeEscalation", True):
                yield Violation(_label(d), f"container {c.get('name')} may be privileged or escalate privileges")


@rule("k8s-non-root", "mandatory", "Containers run as non-root with all capabilities dropped.",
      "A compromised process must not be root in its container.")
def _non_root(view):
    for d in view.of_type(DEPLOYMENT):
        for pod, c in _containers(d):
            sc, psc = c.get("securityContext") or {}, pod.get("securityContext") or {}
            if not (sc.get("runAsNonRoot") or psc.get("runAsNonRoot")) or sc.get("runAsUser") == 0 or psc.get("runAsUser") == 0:
                yield Violation(_label(d), f"container {c.get('name')} may run as root")
            if "ALL" not in ((sc.get("capabilities") or {}).get("drop") or []):
                yield Violation(_label(d), f"container {c.get('name')} keeps Linux capabilities")


@rule("k8s-read-only-root", "advisory", "Containers have a read-only root filesystem.", "Nothing can be dropped into the image at run time.")
def _read_only(view):
    for d in view.of_type(DEPLOYMENT):
        for _, c in _containers(d):
            if not (c.get("securityContext") or {}).get("readOnlyRootFilesystem"):
                yield Violation(_label(d), f"container {c.get('name')} has a writable root filesystem")


@rule("k8s-resources", "mandatory", "Every container sets CPU and memory requests and limits.",
      "Scheduling, autoscaling and the CPU/memory alerts all need them.")
def _resources(view):
    for d in view.of_type(DEPLOYMENT):
        for _, c in _containers(d):
            res = c.get("resources") or {}
            missing = [f"{kind}.{r}" for kind in ("requests", "limits") for r in ("cpu", "memory") if not (res.get(kind) or {}).get(r)]
            if missing:
                yield Violation(_label(d), f"container {c.get('name')} lacks {', '.join(missing)}")


@rule("k8s-probes", "mandatory", "Every container has liveness and readiness probes.",
      "Rolling updates without downtime need readiness; stuck processes need liveness (the seeds: /health, /ready).")
def _probes(view):
    for d in view.of_type(DEPLOYMENT):
        for c in (_pod(d).get("containers") or []):
            missing = [p for p in ("livenessProbe", "readinessProbe") if not c.get(p)]
            if missing:
                yield Violation(_label(d), f"container {c.get('name')} lacks {', '.join(missing)}")


@rule("k8s-no-latest-tag", "mandatory", "Images are pinned: no `latest` and no missing tag.",
      "A release must name exactly what runs, so a rollback can name what ran before.")
def _latest(view):
    for d in view.of_type(DEPLOYMENT):
        for _, c in _containers(d):
            image = c.get("image") or ""
            name = image.rsplit("/", 1)[-1]
            if "@sha256:" in image:
                continue
            if ":" not in name or name.endswith(":latest"):
                yield Violation(_label(d), f"container {c.get('name')} runs unpinned image {image!r}")


@rule("k8s-prod-hpa-min", "mandatory", "Prod autoscalers keep at least 3 replicas.", "The seeds' HA: minimum 3 instances, HPA 3-20.")
def _hpa_min(view):
    if view.prod:
        for h in view.of_type(HPA):
            minimum = number(_spec(h).get("minReplicas"), 1)
            if minimum < PROD_MIN_REPLICAS:
                yield Violation(_label(h), f"minReplicas {minimum:g} (< {PROD_MIN_REPLICAS}) in prod")


@rule("k8s-pdb-per-deployment", "mandatory", "Every Deployment is covered by a PodDisruptionBudget.",
      "Node drains and upgrades must never take a whole service down.")
def _pdb(view):
    budgets = []
    for p in view.of_type(PDB):
        meta, spec = p.props.get("metadata") or {}, p.props.get("spec") or {}
        budgets.append((meta.get("namespace"), (spec.get("selector") or {}).get("matchLabels") or {}))
    for d in view.of_type(DEPLOYMENT):
        ns = (d.props.get("metadata") or {}).get("namespace")
        labels = ((((d.props.get("spec") or {}).get("template") or {}).get("metadata") or {}).get("labels")) or {}
        if not any(bns == ns and sel and all(labels.get(k) == v for k, v in sel.items()) for bns, sel in budgets):
            yield Violation(_label(d), "no PodDisruptionBudget selects its pods")


@rule("k8s-prod-hpa-max", "mandatory", "Prod autoscalers may grow to at least 20 replicas.",
      "The seeds' HPA 3-20: a spike is absorbed by scaling out, not by refusing requests.")
def _hpa_max(view):
    if view.prod:
        for h in view.of_type(HPA):
            maximum = number(_spec(h).get("maxReplicas"))
            if maximum < PROD_MAX_REPLICAS:
                yield Violation(_label(h), f"maxReplicas {maximum:g} (< {PROD_MAX_REPLICAS}) in prod")


@rule("k8s-hpa-targets", "mandatory", "Autoscalers scale out at 70 % CPU and 80 % memory, or earlier.",
      "The seeds' HPA: target tracking at 70 % CPU and 80 % memory; later targets let the CPU and memory alerts fire first.")
def _hpa_targets(view):
    for h in view.of_type(HPA):
        targets = {}
        for m in _spec(h).get("metrics") or []:
            resource = m.get("resource") or {}
            targets[resource.get("name")] = number((resource.get("target") or {}).get("averageUtilization"), float("inf"))
        for name, ceiling in TARGETS.items():
            if name not in targets:
                yield Violation(_label(h), f"does not scale on {name}")
            elif targets[name] > ceiling:
                yield Violation(_label(h), f"scales on {name} at {targets[name]:g} % (> {ceiling} %)")


@rule("k8s-rolling-update", "mandatory", "Deployments roll out one extra pod at a time and never take one away first.",
      "The seeds' Deployment: RollingUpdate with maxSurge 1 and maxUnavailable 0, so a release never lowers capacity.")
def _rolling_update(view):
    for d in view.of_type(DEPLOYMENT):
        strategy = _spec(d).get("strategy") or {}
        rolling = strategy.get("rollingUpdate") or {}
        if strategy.get("type", "RollingUpdate") != "RollingUpdate":
            yield Violation(_label(d), f"strategy {strategy.get('type')} (not RollingUpdate)")
        elif str(rolling.get("maxUnavailable", "25%")) not in ("0", "0.0", "0%"):
            yield Violation(_label(d), f"maxUnavailable {rolling.get('maxUnavailable', '25% (the default)')} (not 0)")


@rule("k8s-probe-timing", "mandatory", "Probes check at least every 10 s and give up after at most 3 failures.",
      "The seeds: health checks every 10 seconds; a failure is 3 consecutive failed checks.")
def _probe_timing(view):
    for d in view.of_type(DEPLOYMENT):
        for c in (_pod(d).get("containers") or []):
            for kind in ("livenessProbe", "readinessProbe"):
                probe = c.get(kind) or {}
                if not probe:
                    continue  # k8s-probes reports it
                period, failures = number(probe.get("periodSeconds"), 10), number(probe.get("failureThreshold"), 3)
                if period > CHECK_PERIOD_SECONDS or failures > FAILED_CHECKS:
                    yield Violation(_label(d), f"container {c.get('name')} {kind}: every {period:g} s, "
                                               f"{failures:g} failures (at most {CHECK_PERIOD_SECONDS} s, {FAILED_CHECKS})")


@rule("k8s-prod-zone-spread", "mandatory", "Prod pods spread evenly across availability zones.",
      "The seeds' Deployment: topology spread over topology.kubernetes.io/zone with maxSkew 1, so a zone's loss "
      "takes a third of a service, not all of it.")
def _zone_spread(view):
    if view.prod:
        for d in view.of_type(DEPLOYMENT):
            spread = [t for t in _pod(d).get("topologySpreadConstraints") or []
                      if t.get("topologyKey") == "topology.kubernetes.io/zone" and number(t.get("maxSkew"), 99) <= 1]
            if not spread:
                yield Violation(_label(d), "no zone topology spread (maxSkew 1) in prod")


@rule("k8s-ingress-tls-waf", "mandatory", "Internet-facing Ingresses serve TLS 1.2+ only (HTTP redirected) behind the WAF.",
      "The seeds: TLS on all traffic (TLS 1.3), WAF rules and rate limiting in front of the API; an ALB without the "
      "WAF's ACL is unprotected.")
def _ingress_tls_waf(view):
    for i in view.of_type(INGRESS):
        notes = (i.props.get("metadata") or {}).get("annotations") or {}
        if notes.get("alb.ingress.kubernetes.io/scheme") != "internet-facing":
            continue
        try:
            ports = {k for p in json.loads(notes.get("alb.ingress.kubernetes.io/listen-ports") or "[]") for k in p}
        except (TypeError, ValueError):
            ports = {"?"}
        if "HTTP" in ports and not notes.get("alb.ingress.kubernetes.io/ssl-redirect"):
            yield Violation(_label(i), "serves plain HTTP without redirecting to HTTPS")
        if "HTTPS" not in ports or not notes.get("alb.ingress.kubernetes.io/certificate-arn"):
            yield Violation(_label(i), "no HTTPS listener with a certificate")
        if not str(notes.get("alb.ingress.kubernetes.io/ssl-policy", "")).startswith(TLS12_POLICIES):
            yield Violation(_label(i), f"TLS policy {notes.get('alb.ingress.kubernetes.io/ssl-policy')!r} allows TLS < 1.2")
        if not notes.get("alb.ingress.kubernetes.io/wafv2-acl-arn"):
            yield Violation(_label(i), "no WAF web ACL attached")


RULES = [
    _privileged,
    _non_root,
    _read_only,
    _resources,
    _probes,
    _latest,
    _hpa_min,
    _pdb,
    _hpa_max,
    _hpa_targets,
    _rolling_update,
    _probe_timing,
    _zone_spread,
    _ingress_tls_waf,
]
