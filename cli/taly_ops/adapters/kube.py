"""Kubernetes through the official client: kubeconfig contexts, the reads the health checks make, and
create-or-patch of rendered objects (what `taly local up` applies to the local cluster).

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

    def apply(self, obj: dict[str, Any], timeout: float) -> str:
        """Create the object, or patch it (strategic merge) when it exists: "created" or "patched".

        ApiFailed when the server refuses it; ValueError for a kind this adapter does not know.
        """
        from kubernetes import client
        from kubernetes.client.rest import ApiException

        kind, meta = obj.get("kind"), obj.get("metadata") or {}
        if kind not in KINDS or obj.get("apiVersion") != KINDS[kind][0]:
            raise ValueError(f"cannot apply {obj.get('apiVersion')} {kind}: known kinds are "
                             + ", ".join(f"{v[0]} {k}" for k, v in KINDS.items()))
        _, api_class, noun = KINDS[kind]
        api = getattr(client, api_class)(self.api_client())
        name = meta["name"]
        if kind in CLUSTER_SCOPED:
            where, create, patch = (), getattr(api, f"create_{noun}"), getattr(api, f"patch_{noun}")
            what = f"{kind} {name}"
        else:
            ns = meta.get("namespace") or "default"
            where, create, patch = (ns,), getattr(api, f"create_namespaced_{noun}"), getattr(api, f"patch_namespaced_{noun}")
            what = f"{kind} {ns}/{name}"
        # The answers are not turned into models: nothing reads them, and it costs the time of the request.
        try:
            _drain(create(*where, obj, _request_timeout=_timeout(timeout), _preload_content=False))
            return "created"
        except ApiException as exc:
            if exc.status != 409:
                raise ApiFailed(f"create {what}: {api_error(exc)}") from None
        try:
            _drain(patch(name, *where, obj, _request_timeout=_timeout(timeout), _preload_content=False))
        except ApiException as exc:
            raise ApiFailed(f"patch {what}: {api_error(exc)}") from None
        return "patched"

    def scale(self, namespace: str, deployment: str, replicas: int, timeout: float) -> None:
        """Set a Deployment's replicas through its scale subresource (as `kubectl scale` and the HPA do)."""
        from kubernetes import client
        from kubernetes.client.rest import ApiException

        try:
            _drain(client.AppsV1Api(self.api_client()).patch_namespaced_deployment_scale(
                deployment, namespace, {"spec": {"replicas": replicas}}, _request_timeout=_timeout(timeout),
                _preload_content=False))
        except ApiException as exc:
            raise ApiFailed(f"scale deployment {namespace}/{deployment}: {api_error(exc)}") from None


# kind -> (apiVersion, the client's API class, the noun of its create_namespaced_*/patch_namespaced_* methods)
KINDS = {
    "Namespace": ("v1", "CoreV1Api", "namespace"),
    "Deployment": ("apps/v1", "AppsV1Api", "deployment"),
    "Service": ("v1", "CoreV1Api", "service"),
    "ConfigMap": ("v1", "CoreV1Api", "config_map"),
    "Secret": ("v1", "CoreV1Api", "secret"),
    "ServiceAccount": ("v1", "CoreV1Api", "service_account"),
    "ResourceQuota": ("v1", "CoreV1Api", "resource_quota"),
    "LimitRange": ("v1", "CoreV1Api", "limit_range"),
    "HorizontalPodAutoscaler": ("autoscaling/v2", "AutoscalingV2Api", "horizontal_pod_autoscaler"),
    "PodDisruptionBudget": ("policy/v1", "PolicyV1Api", "pod_disruption_budget"),
    "NetworkPolicy": ("networking.k8s.io/v1", "NetworkingV1Api", "network_policy"),
    "Ingress": ("networking.k8s.io/v1", "NetworkingV1Api", "ingress"),
    "Role": ("rbac.authorization.k8s.io/v1", "RbacAuthorizationV1Api", "role"),
    "RoleBinding": ("rbac.authorization.k8s.io/v1", "RbacAuthorizationV1Api", "role_binding"),
}


CLUSTER_SCOPED = frozenset({"Namespace"})


def _drain(response: Any) -> None:
    """Read an unparsed answer to its end, so that its connection can serve the next request."""
    response.read()
    response.release_conn()


class ApiFailed(Exception):
    """The API server refused a write: one line, with its Status message."""


def api_error(exc: BaseException) -> str:
    """An ApiException as "HTTP 422 Invalid: <the Status message>"."""
    import json

    text = error_text(exc)
    try:
        message = json.loads(getattr(exc, "body", "") or "{}").get("message")
    except (ValueError, AttributeError):
        message = None
    return f"{text}: {message}" if message else text


def error_text(exc: BaseException) -> str:
    """An API error as "HTTP 403 Forbidden"; anything else as one line."""
    status = getattr(exc, "status", None)
    if status:
        return f"HTTP {status} {getattr(exc, 'reason', '')}".strip()
    return (" ".join(str(exc).split()) or type(exc).__name__)[:300]
