"""Kubernetes through the official client: kubeconfig contexts, and the reads the health checks make.

The kubeconfig is $KUBECONFIG (else ~/.kube/config); each environment names its context in the
contract (`cluster.kube_context`, created by `aws eks update-kubeconfig --name <cluster> --alias
<context>`). The kubernetes package is imported on first use: `taly --help` never loads it.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REQUIRES = ("kubernetes.client", "kubernetes.config")  # what a caller may import ahead of its deadlines


class KubeconfigProblem(Exception):
    """The kubeconfig or the context cannot be used: nothing was asked of a cluster."""


def _timeout(timeout: float) -> tuple[float, float]:
    """(connect, read) under a caller's deadline."""
    io = max(timeout - 0.5, 0.5)
    return (min(io, 3.0), io)


@dataclass
class Kube:
    """One kubeconfig context. The ApiClient is made once, without retries, so that failures are quick."""

    context: str
    hint: str = ""  # how to create the context, for the error
    kubeconfig: Path | None = None
    _api: Any = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def api_client(self):
        with self._lock:
            if self._api is None:
                from kubernetes import client, config

                cfg = client.Configuration()
                path = str(self.kubeconfig) if self.kubeconfig else os.environ.get("KUBECONFIG") or None
                try:
                    api = config.new_client_from_config(config_file=path, context=self.context,
                                                        persist_config=False, client_configuration=cfg)
                except (config.ConfigException, OSError) as exc:
                    raise KubeconfigProblem(f"kubeconfig context {self.context!r}: {exc}"
                                            + (f" ({self.hint})" if self.hint else "")) from None
                api.configuration.retries = 0
                self._api = api
            return self._api

    def api_versions(self, timeout: float) -> list[str]:
        from kubernetes import client

        return list(client.CoreApi(self.api_client()).get_api_versions(_request_timeout=_timeout(timeout)).versions or [])

    def deployments(self, namespace: str, timeout: float) -> list[Any]:
        from kubernetes import client

        return client.AppsV1Api(self.api_client()).list_namespaced_deployment(
            namespace, _request_timeout=_timeout(timeout)).items

    def pods(self, namespace: str, timeout: float) -> list[Any]:
        from kubernetes import client

        return client.CoreV1Api(self.api_client()).list_namespaced_pod(namespace, _request_timeout=_timeout(timeout)).items


def error_text(exc: BaseException) -> str:
    """An API error as "HTTP 403 Forbidden"; anything else as one line."""
    status = getattr(exc, "status", None)
    if status:
        return f"HTTP {status} {getattr(exc, 'reason', '')}".strip()
    return (" ".join(str(exc).split()) or type(exc).__name__)[:300]
