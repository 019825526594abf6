"""The API server's defaulting (pkg/apis/*/v1/defaults.go) and create-time preparation, for our kinds.

What `kubectl get -o yaml` shows after a create on EKS: a Deployment's replicas, strategy,
revisionHistoryLimit and progressDeadlineSeconds; a pod spec's restartPolicy, dnsPolicy,
terminationGracePeriodSeconds and each container's imagePullPolicy, termination message and probe
timings; a Service's type, protocols, targetPorts and a cluster IP. The controllers rely on them too
(maxSurge/maxUnavailable, progressDeadlineSeconds), as upstream's do.
"""

from __future__ import annotations

import base64
import itertools
from typing import Any

from .resources import Resource

Obj = dict[str, Any]
_cluster_ips = itertools.count(10)

_PROBE = {"timeoutSeconds": 1, "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3}


def apply(resource: Resource, obj: Obj) -> None:
    """Fill in the defaults upstream fills when it decodes `obj` (in place; idempotent)."""
    spec = obj.get("spec")
    plural = resource.plural
    if plural in ("deployments", "replicasets"):
        if not isinstance(spec, dict):
            return
        spec.setdefault("replicas", 1)
        if plural == "deployments":
            strategy = spec.setdefault("strategy", {})
            strategy.setdefault("type", "RollingUpdate")
            if strategy["type"] == "RollingUpdate":
                rolling = strategy.setdefault("rollingUpdate", {})
                rolling.setdefault("maxUnavailable", "25%")
                rolling.setdefault("maxSurge", "25%")
            spec.setdefault("revisionHistoryLimit", 10)
            spec.setdefault("progressDeadlineSeconds", 600)
        template = spec.get("template")
        if isinstance(template, dict) and isinstance(template.get("spec"), dict):
            pod_spec(template["spec"])
    elif plural == "pods" and isinstance(spec, dict):
        pod_spec(spec)
    elif plural == "services" and isinstance(spec, dict):
        _service(spec)
    elif plural == "secrets":
        obj.setdefault("type", "Opaque")
        plain = obj.pop("stringData", None)
        if isinstance(plain, dict):  # write-only: merged into data, base64-encoded
            data = obj.setdefault("data", {})
            for key, value in plain.items():
                data[key] = base64.b64encode(str(value).encode()).decode()
    elif plural == "namespaces":
        obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
    elif plural == "networkpolicies" and isinstance(spec, dict):
        if "policyTypes" not in spec:
            spec["policyTypes"] = ["Ingress"] + (["Egress"] if spec.get("egress") else [])
        for rule in (spec.get("ingress") or []) + (spec.get("egress") or []):
            for port in (rule.get("ports") or []) if isinstance(rule, dict) else []:
                if isinstance(port, dict):
                    port.setdefault("protocol", "TCP")


def pod_spec(spec: Obj) -> None:
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("securityContext", {})
    spec.setdefault("schedulerName", "default-scheduler")
    for kind in ("initContainers", "containers"):
        for container in spec.get(kind) or []:
            if isinstance(container, dict):
                _container(container)


def _container(container: Obj) -> None:
    image = str(container.get("image") or "")
    if "imagePullPolicy" not in container:
        tagged = ":" in image.rsplit("/", 1)[-1] or "@" in image
        latest = image.endswith(":latest") or not tagged
        container["imagePullPolicy"] = "Always" if latest else "IfNotPresent"
    container.setdefault("terminationMessagePath", "/dev/termination-log")
    container.setdefault("terminationMessagePolicy", "File")
    container.setdefault("resources", {})
    for port in container.get("ports") or []:
        if isinstance(port, dict):
            port.setdefault("protocol", "TCP")
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        value = container.get(probe)
        if isinstance(value, dict):
            for key, default in _PROBE.items():
                value.setdefault(key, default)
            if isinstance(value.get("httpGet"), dict):
                value["httpGet"].setdefault("scheme", "HTTP")


def _service(spec: Obj) -> None:
    spec.setdefault("type", "ClusterIP")
    spec.setdefault("sessionAffinity", "None")
    for port in spec.get("ports") or []:
        if isinstance(port, dict):
            port.setdefault("protocol", "TCP")
            if "port" in port:
                port.setdefault("targetPort", port["port"])
    if spec["type"] in ("ClusterIP", "NodePort", "LoadBalancer"):
        spec.setdefault("internalTrafficPolicy", "Cluster")


def prepare_create(resource: Resource, obj: Obj) -> None:
    """What a create resets or assigns: the status of kinds with a status subresource, a Service's IP."""
    plural = resource.plural
    if plural == "pods":
        obj["status"] = {"phase": "Pending", "qosClass": qos_class(obj.get("spec") or {})}
    elif plural == "namespaces":
        obj["status"] = {"phase": "Active"}
    elif plural == "services":
        spec = obj.setdefault("spec", {})
        if spec.get("type", "ClusterIP") != "ExternalName" and spec.get("clusterIP") != "None":
            if not spec.get("clusterIP"):
                n = next(_cluster_ips)
                spec["clusterIP"] = f"10.96.{n // 250}.{n % 250 + 1}"
            spec.setdefault("clusterIPs", [spec["clusterIP"]])
            spec.setdefault("ipFamilies", ["IPv4"])
            spec.setdefault("ipFamilyPolicy", "SingleStack")
        obj["status"] = {"loadBalancer": {}}
    elif resource.status:
        obj["status"] = {}


def qos_class(spec: Obj) -> str:
    """Guaranteed, Burstable or BestEffort from the containers' requests and limits (as upstream)."""
    containers = [c for c in (spec.get("containers") or []) + (spec.get("initContainers") or [])
                  if isinstance(c, dict)]
    requests_any = limits_any = False
    guaranteed = True
    for container in containers:
        res = container.get("resources") or {}
        requests, limits = res.get("requests") or {}, res.get("limits") or {}
        requests_any = requests_any or any(k in ("cpu", "memory") for k in requests)
        limits_any = limits_any or any(k in ("cpu", "memory") for k in limits)
        for key in ("cpu", "memory"):
            if key not in limits or requests.get(key, limits[key]) != limits[key]:
                guaranteed = False
    if not requests_any and not limits_any:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"
