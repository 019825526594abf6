"""Prometheus's pod discovery for the local cluster: what `kubernetes_sd_configs` (role: pod) would find,
served as HTTP service discovery.

Debian's Prometheus is built without the Kubernetes discovery (`kubernetes_sd_configs` is not a
field of its scrape config), so Prometheus cannot list and watch the API server itself. Its generic
`http_sd_configs` polls this endpoint instead, which answers with exactly the targets and `__meta_*`
labels the Kubernetes discovery gives for role pod (discovery/kubernetes/pod.go): one target per
container port at `podIP:port` (a container without ports: `podIP`), pods without an IP left out.
The relabelling over them is then the one a Prometheus on EKS runs (the prometheus.io/* annotations).
"""

from __future__ import annotations

import re
from typing import Any

_INVALID = re.compile(r"[^a-zA-Z0-9_]")
POD = "__meta_kubernetes_pod_"


def _sanitize(name: str) -> str:
    return _INVALID.sub("_", name)


def _pod_labels(pod: dict[str, Any]) -> dict[str, str]:
    meta, spec, status = pod["metadata"], pod.get("spec") or {}, pod.get("status") or {}
    ready = next((c.get("status", "Unknown") for c in status.get("conditions") or [] if c.get("type") == "Ready"),
                 "Unknown")
    out = {
        "__meta_kubernetes_namespace": meta.get("namespace", ""),
        f"{POD}name": meta["name"],
        f"{POD}ip": status.get("podIP", ""),
        f"{POD}ready": str(ready).lower(),
        f"{POD}phase": status.get("phase", ""),
        f"{POD}node_name": spec.get("nodeName", ""),
        f"{POD}host_ip": status.get("hostIP", ""),
        f"{POD}uid": meta.get("uid", ""),
    }
    controller = next((o for o in meta.get("ownerReferences") or [] if o.get("controller")), None)
    if controller:
        out[f"{POD}controller_kind"] = controller.get("kind", "")
        out[f"{POD}controller_name"] = controller.get("name", "")
    for kind, values in (("label", meta.get("labels") or {}), ("annotation", meta.get("annotations") or {})):
        for key, value in values.items():
            out[f"{POD}{kind}_{_sanitize(key)}"] = str(value)
            out[f"{POD}{kind}present_{_sanitize(key)}"] = "true"
    return out


def target_groups(pods: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """HTTP SD's answer: [{"targets": ["ip:port"], "labels": {...}}], one group per container port."""
    groups = []
    for pod in pods:
        ip = (pod.get("status") or {}).get("podIP")
        if not ip:
            continue
        base = _pod_labels(pod)
        spec = pod.get("spec") or {}
        for init, containers in ((False, spec.get("containers") or []), (True, spec.get("initContainers") or [])):
            for c in containers:
                common = {**base, f"{POD}container_name": c["name"], f"{POD}container_image": c.get("image", ""),
                          f"{POD}container_init": str(init).lower()}
                ports = c.get("ports") or []
                if not ports:
                    groups.append({"targets": [ip], "labels": common})
                for port in ports:
                    groups.append({"targets": [f"{ip}:{port['containerPort']}"], "labels": {
                        **common, f"{POD}container_port_name": port.get("name", ""),
                        f"{POD}container_port_number": str(port["containerPort"]),
                        f"{POD}container_port_protocol": port.get("protocol", "TCP")}})
    return groups
