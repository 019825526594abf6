"""Rules over the Kubernetes objects of a stack (from the charts, rendered into the plan)."""

from __future__ import annotations

from typing import Any, Iterable

from .model import StackView, Subject, Violation, rule

DEPLOYMENT = "kubernetes:apps/v1:Deployment"
HPA = "kubernetes:autoscaling/v2:HorizontalPodAutoscaler"
PDB = "kubernetes:policy/v1:PodDisruptionBudget"


def _pod(d: Subject) -> dict[str, Any]:
    return ((d.props.get("spec") or {}).get("template") or {}).get("spec") or {}


def _containers(d: Subject) -> Iterable[tuple[dict[str, Any], dict[str, Any]]]:
    pod = _pod(d)
    for c in (pod.get("containers") or []) + (pod.get("initContainers") or []):
        yield pod, c


def _label(d: Subject) -> str:
    return (d.props.get("metadata") or {}).get("name") or d.name


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
            minimum = (h.props.get("spec") or {}).get("minReplicas", 1)
            if minimum < 3:
                yield Violation(_label(h), f"minReplicas {minimum} (< 3) in prod")


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


RULES = [
    _privileged,
    _non_root,
    _read_only,
    _resources,
    _probes,
    _latest,
    _hpa_min,
    _pdb,
]
