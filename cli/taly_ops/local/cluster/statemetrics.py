"""The cluster's objects as metrics, under kube-state-metrics' names, and Prometheus's pod discovery, on the
cluster process's metrics port (`/metrics`; `/sd/pods`, see podsd.py, with the cluster's bearer token).

On EKS kube-state-metrics turns the API's objects into series that the alert rules and the SLO checks
read (`kube_pod_container_status_restarts_total`, `kube_pod_container_resource_limits`, ...); locally
this serves the same names and labels from the Store the API server uses, for Prometheus's
`kube-state-metrics` job. Only the families the project's rules and checks use, plus the rollout
state of Deployments; every value is read from the Store at scrape time.
"""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Iterable

from . import podsd

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_UNITS = {"": 1, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "Ki": 1024, "Mi": 1024 ** 2, "Gi": 1024 ** 3,
          "Ti": 1024 ** 4, "m": 1e-3}
_QUANTITY = re.compile(r"^([0-9.]+)([a-zA-Z]*)$")


def quantity(text: Any) -> float | None:
    """A Kubernetes quantity ("500m", "1", "256Mi") as a number (cores, bytes); None when unreadable."""
    m = _QUANTITY.match(str(text))
    if not m or m.group(2) not in _UNITS:
        return None
    return float(m.group(1)) * _UNITS[m.group(2)]


def _labels(**labels: Any) -> str:
    def esc(v: Any) -> str:
        return str(v).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')

    return "{" + ",".join(f'{k}="{esc(v)}"' for k, v in labels.items()) + "}"


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _family(name: str, kind: str, help_: str, samples: Iterable[tuple[dict[str, Any], float]]) -> list[str]:
    lines = [f"# HELP {name} {help_}", f"# TYPE {name} {kind}"]
    lines += [f"{name}{_labels(**labels)} {_number(value)}" for labels, value in samples]
    return lines


def _pod_samples(pods: list[dict[str, Any]]) -> dict[str, list[tuple[dict[str, Any], float]]]:
    out: dict[str, list[tuple[dict[str, Any], float]]] = {
        "restarts": [], "limits": [], "requests": [], "phase": [], "ready": []}
    for p in pods:
        meta, spec, status = p["metadata"], p.get("spec") or {}, p.get("status") or {}
        pod = {"namespace": meta.get("namespace", ""), "pod": meta["name"], "uid": meta.get("uid", "")}
        for cs in status.get("containerStatuses") or []:
            out["restarts"].append(({**pod, "container": cs["name"]}, float(cs.get("restartCount") or 0)))
        for c in spec.get("containers") or []:
            resources = c.get("resources") or {}
            for which in ("limits", "requests"):
                for resource, text in (resources.get(which) or {}).items():
                    value = quantity(text)
                    if value is not None:
                        unit = "core" if resource == "cpu" else "byte"
                        out[which].append(({**pod, "container": c["name"], "node": "taly-local",
                                            "resource": resource, "unit": unit}, value))
        phase = status.get("phase", "Pending")
        for candidate in ("Pending", "Running", "Succeeded", "Failed", "Unknown"):
            out["phase"].append(({**pod, "phase": candidate}, 1.0 if candidate == phase else 0.0))
        ready = next((c.get("status") for c in status.get("conditions") or [] if c.get("type") == "Ready"), "Unknown")
        for candidate in ("true", "false", "unknown"):
            out["ready"].append(({**pod, "condition": candidate}, 1.0 if candidate == str(ready).lower() else 0.0))
    return out


def render(list_objects: Callable[[str], list[dict[str, Any]]]) -> str:
    """The exposition text of the cluster's pods and Deployments."""
    pods = _pod_samples(list_objects("pods"))
    lines = []
    lines += _family("kube_pod_container_status_restarts_total", "counter",
                     "The number of container restarts per container.", pods["restarts"])
    lines += _family("kube_pod_container_resource_limits", "gauge",
                     "The number of requested limit resource by a container.", pods["limits"])
    lines += _family("kube_pod_container_resource_requests", "gauge",
                     "The number of requested request resource by a container.", pods["requests"])
    lines += _family("kube_pod_status_phase", "gauge", "The pods current phase.", pods["phase"])
    lines += _family("kube_pod_status_ready", "gauge", "Describes whether the pod is ready to serve requests.",
                     pods["ready"])
    deployments = list_objects("deployments")
    for name, field, help_ in (
        ("kube_deployment_spec_replicas", ("spec", "replicas"), "Number of desired pods for a deployment."),
        ("kube_deployment_status_replicas_updated", ("status", "updatedReplicas"),
         "The number of updated replicas per deployment."),
        ("kube_deployment_status_replicas_available", ("status", "availableReplicas"),
         "The number of available replicas per deployment."),
        ("kube_deployment_status_observed_generation", ("status", "observedGeneration"),
         "The generation observed by the deployment controller."),
        ("kube_deployment_metadata_generation", ("metadata", "generation"),
         "Sequence number representing a specific generation of the desired state."),
    ):
        samples = [({"namespace": d["metadata"].get("namespace", ""), "deployment": d["metadata"]["name"]},
                    float((d.get(field[0]) or {}).get(field[1]) or 0)) for d in deployments]
        lines += _family(name, "gauge", help_, samples)
    return "\n".join(lines) + "\n"


class MetricsServer:
    """GET /metrics and /sd/pods on host:port, in a thread; a failing request is a 500, never a dead process."""

    def __init__(self, host: str, port: int, list_objects: Callable[[str], list[dict[str, Any]]], token: str) -> None:
        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                path = self.path.split("?", 1)[0]
                try:
                    if path == "/metrics":
                        return self._send(200, render(list_objects), CONTENT_TYPE)
                    if path == "/sd/pods":
                        if self.headers.get("Authorization") != f"Bearer {token}":
                            return self._send(401, "Unauthorized\n", "text/plain")
                        groups = podsd.target_groups(list_objects("pods"))
                        return self._send(200, json.dumps(groups), "application/json")
                except Exception as exc:  # noqa: BLE001 - reported to the scraper
                    return self._send(500, f"{type(exc).__name__}: {exc}\n", "text/plain")
                self._send(404, "not found: /metrics and /sd/pods only\n", "text/plain")

            def _send(self, code: int, text: str, content_type: str) -> None:
                raw = text.encode()
                self.send_response(code)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, name="statemetrics", daemon=True)

    def start(self) -> "MetricsServer":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
