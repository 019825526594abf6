"""A tiny Kubernetes API emulator: enough of the API for the health checks, through the official client.

A threaded HTTP server on 127.0.0.1 serving /api, /apis, /version, and the Deployment and Pod lists of
any namespace as JSON, with contents the test sets (`deployments`, `pods`). It records every request
path, and writes a kubeconfig pointing at itself (a bearer token, plain HTTP).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

TOKEN = "emulator-token"
DEPLOYMENTS = re.compile(r"^/apis/apps/v1/namespaces/([^/]+)/deployments$")
PODS = re.compile(r"^/api/v1/namespaces/([^/]+)/pods$")


class KubeEmulator:
    def __init__(self) -> None:
        self.deployments: list[dict[str, Any]] = []
        self.pods: list[dict[str, Any]] = []
        self.requests: list[str] = []
        emulator = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                path = self.path.split("?", 1)[0].rstrip("/") or "/"
                emulator.requests.append(path)
                if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                    return self._send(401, _status(401, "Unauthorized"))
                body = emulator.route(path)
                if body is None:
                    return self._send(404, _status(404, f"the server could not find the requested resource {path}"))
                self._send(200, body)

            def _send(self, code: int, body: dict[str, Any]) -> None:
                raw = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True, name="kube-emulator")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> "KubeEmulator":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def route(self, path: str) -> dict[str, Any] | None:
        if path == "/api":
            return {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [
                {"clientCIDR": "0.0.0.0/0", "serverAddress": self.url.removeprefix("http://")}]}
        if path == "/apis":
            apps = {"groupVersion": "apps/v1", "version": "v1"}
            return {"kind": "APIGroupList", "apiVersion": "v1",
                    "groups": [{"name": "apps", "versions": [apps], "preferredVersion": apps}]}
        if path == "/version":
            return {"major": "1", "minor": "30", "gitVersion": "v1.30.0-emulator", "platform": "linux/amd64"}
        if m := DEPLOYMENTS.match(path):
            items = [d for d in self.deployments if d["metadata"].get("namespace") == m.group(1)]
            return {"kind": "DeploymentList", "apiVersion": "apps/v1", "metadata": {"resourceVersion": "1"}, "items": items}
        if m := PODS.match(path):
            items = [p for p in self.pods if p["metadata"].get("namespace") == m.group(1)]
            return {"kind": "PodList", "apiVersion": "v1", "metadata": {"resourceVersion": "1"}, "items": items}
        return None

    def write_kubeconfig(self, path: Path, context: str, namespace: str = "default") -> Path:
        path.write_text(yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config", "current-context": context,
            "clusters": [{"name": "emulator", "cluster": {"server": self.url}}],
            "users": [{"name": "emulator", "user": {"token": TOKEN}}],
            "contexts": [{"name": context, "context": {"cluster": "emulator", "user": "emulator", "namespace": namespace}}],
        }))
        return path


def _status(code: int, message: str) -> dict[str, Any]:
    return {"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": message, "code": code}


def _time(when: dt.datetime) -> str:
    return when.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def deployment(name: str, namespace: str, replicas: int, updated: int, available: int, *,
               generation: int = 2, observed_generation: int = 2) -> dict[str, Any]:
    labels = {"app.kubernetes.io/name": name}
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "generation": generation, "labels": labels},
        "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                 "template": {"metadata": {"labels": labels},
                              "spec": {"containers": [{"name": name, "image": f"registry.local/{name}:1.0.0"}]}}},
        "status": {"observedGeneration": observed_generation, "replicas": replicas, "updatedReplicas": updated,
                   "readyReplicas": available, "availableReplicas": available},
    }


def pod(name: str, namespace: str, *, waiting: str | None = None, restarts: int = 0,
        last_terminated: dt.datetime | None = None) -> dict[str, Any]:
    container = name.rsplit("-", 2)[0]
    state = ({"waiting": {"reason": waiting, "message": f"back-off restarting {container}"}} if waiting
             else {"running": {"startedAt": _time(dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=30))}})
    last = ({"terminated": {"exitCode": 1, "reason": "Error", "finishedAt": _time(last_terminated),
                            "startedAt": _time(last_terminated - dt.timedelta(seconds=5))}} if last_terminated else {})
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"containers": [{"name": container, "image": f"registry.local/{container}:1.0.0"}]},
        "status": {"phase": "Running", "containerStatuses": [{
            "name": container, "image": f"registry.local/{container}:1.0.0", "imageID": "", "ready": waiting is None,
            "restartCount": restarts, "state": state, "lastState": last}]},
    }


# Builders of the objects it serves, reachable from the `kube` fixture (kube.deployment(...), kube.pod(...)).
KubeEmulator.deployment = staticmethod(deployment)  # type: ignore[attr-defined]
KubeEmulator.pod = staticmethod(pod)  # type: ignore[attr-defined]
