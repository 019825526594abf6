"""Kubernetes, through the official client (the local estate's cluster too, through its own kubeconfig):
the API server answers, every Deployment in the namespace is rolled out, no pod is in CrashLoopBackOff
or ImagePullBackOff, and containers have not restarted too often in the last hour.

The kubeconfig is $KUBECONFIG (else ~/.kube/config), the local estate's `<state>/kubeconfig`; the context
is the contract's `cluster.kube_context` (`aws eks update-kubeconfig --name <cluster> --alias <context>`
creates it; `taly local up` writes `taly-local`) and the namespace its `cluster.namespace`. Kubernetes keeps no restart history: "restarts in the last hour" counts the
restarts of containers whose last termination was within the hour.
"""

from __future__ import annotations

import datetime as dt
from functools import partial

from ..adapters import kube as kube_adapter
from ..environment import Environment
from .model import Probe, Recorder
from .thresholds import Thresholds

C = "kubernetes"
REQUIRES = kube_adapter.REQUIRES  # imported by the operation before the clocks start
BACKOFF = ("CrashLoopBackOff", "ImagePullBackOff", "ErrImagePull")


def probes(target: Environment, th: Thresholds) -> list[Probe]:
    t = th.timeouts.kubernetes
    ns = target.contract.cluster.namespace
    return [
        Probe(C, "api server", partial(api_server, target, t), liveness=True, timeout=t),
        Probe(C, f"deployments in {ns}", partial(deployments, target, t), timeout=t),
        Probe(C, f"pods in {ns}", partial(pods, target, th, t), timeout=t),
    ]


def api_server(target: Environment, timeout: float):
    rec = Recorder(C)
    context = target.contract.cluster.kube_context
    try:
        versions = target.kube().api_versions(timeout)
    except kube_adapter.KubeconfigProblem as exc:
        rec.add("api server", "unknown", "no kubeconfig context", None, str(exc))
        return rec.results
    except Exception as exc:  # noqa: BLE001 - no answer is the verdict
        rec.add("api server", "fail", "no answer", None, f"GET /api ({context}): {kube_adapter.error_text(exc)}")
        return rec.results
    rec.add("api server", "ok", "answering", None, f"GET /api ({context}) -> {', '.join(versions)}")
    return rec.results


def deployments(target: Environment, timeout: float):
    rec = Recorder(C)
    ns = target.contract.cluster.namespace
    items = target.kube().deployments(ns, timeout)
    call = f"GET /apis/apps/v1/namespaces/{ns}/deployments"
    if not items:
        rec.add(f"deployments in {ns}", "warn", "none", "rolled out", f"{call} -> no deployments")
        return rec.results
    for d in sorted(items, key=lambda d: d.metadata.name):
        spec, status = d.spec, d.status
        want = spec.replicas if spec.replicas is not None else 1
        generation, observed = d.metadata.generation or 0, status.observed_generation or 0
        updated, available, ready = status.updated_replicas or 0, status.available_replicas or 0, status.ready_replicas or 0
        stalled = [c.message or c.reason for c in status.conditions or []
                   if c.type == "Progressing" and c.reason == "ProgressDeadlineExceeded"]
        problems = []
        if observed < generation:
            problems.append(f"observedGeneration {observed} < generation {generation}")
        if updated != want:
            problems.append(f"updatedReplicas {updated} != replicas {want}")
        if available != want:
            problems.append(f"availableReplicas {available} != replicas {want}")
        problems += stalled
        rec.add(f"deployment {d.metadata.name}", "fail" if problems else "ok",
                f"{updated}/{want} updated, {available}/{want} available, {ready} ready",
                "observedGeneration >= generation, updated == available == replicas",
                f"{call}: " + ("; ".join(problems) if problems else "rolled out"))
    return rec.results


def pods(target: Environment, th: Thresholds, timeout: float):
    rec = Recorder(C)
    ns = target.contract.cluster.namespace
    items = target.kube().pods(ns, timeout)
    call = f"GET /api/v1/namespaces/{ns}/pods ({len(items)} pods)"
    now = dt.datetime.now(dt.timezone.utc)
    backing_off, restarted, restarts = [], [], 0
    for p in items:
        statuses = (p.status.container_statuses or []) + (p.status.init_container_statuses or [])
        for cs in statuses:
            waiting = cs.state.waiting if cs.state else None
            if waiting is not None and waiting.reason in BACKOFF:
                backing_off.append(f"{p.metadata.name}/{cs.name}: {waiting.reason} ({cs.restart_count} restarts)")
            last = cs.last_state.terminated if cs.last_state else None
            finished = getattr(last, "finished_at", None)
            if finished is not None and finished.tzinfo is None:
                finished = finished.replace(tzinfo=dt.timezone.utc)
            if cs.restart_count and finished is not None and now - finished <= dt.timedelta(hours=1):
                restarts += cs.restart_count
                restarted.append(f"{p.metadata.name}/{cs.name}={cs.restart_count}")
    rec.add("pods backing off", "fail" if backing_off else "ok", f"{len(backing_off)} container(s)",
            "no CrashLoopBackOff or ImagePullBackOff",
            f"{call}: " + ("; ".join(backing_off[:5]) + (f" (+{len(backing_off) - 5} more)" if len(backing_off) > 5 else "")
                           if backing_off else "none waiting in a back-off"))
    lim = th.kubernetes.restarts_last_hour
    rec.add("restarts in the last hour", lim.grade(restarts), f"{restarts} restart(s)", lim.describe(),
            f"{call}: restartCount of containers last terminated within the hour: " + (", ".join(restarted[:5]) or "none"))
    return rec.results
