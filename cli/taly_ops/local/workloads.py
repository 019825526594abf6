"""The CMS services on the local cluster: charts/taly-service rendered for environment `local`.

The values come from the stacks' own path (taly_platform.releases.release_values, what the Pulumi
program passes helm) with a local layer on top, the way an environment's stack file is a layer:
two replicas a service (the HorizontalPodAutoscaler's floor), probes that start at once, the image
references of the local registry (digest-pinned, as ECR's), and the endpoints of the local
PostgreSQL, Redis and RabbitMQ in the ConfigMap, so each stand-in's /ready checks real dependencies.

The chart creates no Secret: in the cloud an external-secrets controller syncs `<name>-secrets`
from Secrets Manager. Locally `secrets()` builds those Secrets from the estate's passwords, the one
object applied that the chart does not render.

Settings the stand-ins read (ConfigMap, only for the dependencies the service uses):
  DATABASE_HOST, DATABASE_PORT, DATABASE_NAME, DATABASE_READER_HOSTS; REDIS_HOST, REDIS_PORT;
  AMQP_ENDPOINT, AMQP_MANAGEMENT_URL, TALY_QUEUE (the service's work queue, `taly.<name>`).
and from the Secret: DATABASE_USER, DATABASE_PASSWORD; REDIS_PASSWORD; AMQP_USERNAME, AMQP_PASSWORD.
"""

from __future__ import annotations

import base64
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from taly_platform.catalog import CATALOG, Service
from taly_platform.config import ServiceSizing, ServicesConfig
from taly_platform.releases import CHART, namespace_labels, release_name, release_values

from ..adapters import helm
from .context import REGION

NAMESPACE = "taly"
PREFIX = "taly-local"  # also the kubeconfig context and the contract's cluster.kube_context
ACCOUNT = "123456789012"  # the AWS emulator's account: the IRSA role ARNs name it (nothing assumes them locally)
REPLICAS = 2
INITIAL_TAG = "1.0.0"

SERVICES = ServicesConfig(
    namespace=NAMESPACE,
    image_registry="registry.taly.local/taly",  # replaced per service by the local registry's reference
    initial_image_tag=INITIAL_TAG,
    ingress_host="api.taly.local",
    certificate_arn=f"arn:aws:acm:{REGION}:{ACCOUNT}:certificate/taly-local",
    # Small requests (no scheduler counts them) and a fixed count: nothing scales pods locally.
    sizing=ServiceSizing(min_replicas=REPLICAS, max_replicas=REPLICAS, cpu_request="50m", cpu_limit="500m",
                         memory_request="32Mi", memory_limit="256Mi"),
    log_level="debug",
)
WEB_ACL_ARN = f"arn:aws:wafv2:{REGION}:{ACCOUNT}:regional/webacl/{PREFIX}/local"
# Readiness probed at once and every second: `taly local up` waits for every pod to be ready. No delay is
# written as no initialDelaySeconds at all (None: helm drops the chart's default): the API server never shows
# a zero there (Go omits it), so `kubectl rollout undo`, which sends back a ReplicaSet's template through Go
# types, would otherwise hand back a template differing from the Deployment's by that field alone.
PROBES = {
    "liveness": {"path": "/health", "initialDelaySeconds": 2, "periodSeconds": 5, "timeoutSeconds": 2,
                 "failureThreshold": 3},
    "readiness": {"path": "/ready", "initialDelaySeconds": None, "periodSeconds": 1, "timeoutSeconds": 1,
                  "failureThreshold": 3},
}
GRACE_SECONDS = 5  # the stand-ins stop at once on SIGTERM; a rollout's old pods need not linger


def role_arn(service: str) -> str:
    return f"arn:aws:iam::{ACCOUNT}:role/{PREFIX}-{service}"


def split_reference(reference: str) -> dict[str, str]:
    """`<registry>/taly/<name>:<tag>@sha256:<hex>` -> the chart's image values (repository, tag, digest)."""
    name, _, digest = reference.partition("@")
    repository, sep, tag = name.rpartition(":")
    if not sep or "/" in tag or not digest.startswith("sha256:"):
        raise ValueError(f"not a digest-pinned image reference: {reference!r}")
    return {"repository": repository, "tag": tag, "digest": digest}


def config(svc: Service, endpoints: dict[str, Any]) -> dict[str, str]:
    """The ConfigMap's dependency settings of one service (non-secret), from the estate's endpoints."""
    pg, redis, mq = endpoints["postgres"], endpoints["redis"], endpoints["rabbitmq"]
    out: dict[str, str] = {}
    if svc.database:
        replica = pg["replica"]
        out |= {"DATABASE_HOST": pg["primary"]["host"], "DATABASE_PORT": str(pg["primary"]["port"]),
                "DATABASE_NAME": pg["primary"]["database"],
                "DATABASE_READER_HOSTS": f"{replica['host']}:{replica['port']}"}
    if svc.cache:
        out |= {"REDIS_HOST": redis["primary"]["host"], "REDIS_PORT": str(redis["primary"]["port"])}
    if svc.broker:
        out |= {"AMQP_ENDPOINT": f"amqp://{mq['host']}:{mq['amqp_port']}",
                "AMQP_MANAGEMENT_URL": mq["management_url"], "TALY_QUEUE": f"taly.{svc.name}"}
    return out


def values(svc: Service, endpoints: dict[str, Any], image: str) -> dict[str, Any]:
    """The chart values of one service on the local cluster: the stacks' values path, then the local layer."""
    out = release_values(svc.name, environment="local", region=REGION, services=SERVICES, role_arn=role_arn(svc.name),
                         web_acl_arn=WEB_ACL_ARN, data_cidrs=[])
    out["image"] = {**split_reference(image), "pullPolicy": "IfNotPresent"}
    out["probes"] = PROBES
    out["config"] = config(svc, endpoints)
    out["terminationGracePeriodSeconds"] = GRACE_SECONDS
    return out


def render(endpoints: dict[str, Any], images: dict[str, str], kube_version: str | None = None) -> list[dict[str, Any]]:
    """Every service's objects, as `helm template` renders them (the real binary; two at a time)."""
    def one(svc: Service) -> list[dict[str, Any]]:
        return helm.template(CHART, release_name(PREFIX, svc.name), NAMESPACE, values(svc, endpoints, images[svc.name]),
                             kube_version=kube_version)

    with ThreadPoolExecutor(max_workers=2) as pool:
        return [obj for objects in pool.map(one, CATALOG) for obj in objects]


def namespace() -> dict[str, Any]:
    """The services' namespace, labelled as the Pulumi program labels it (the API refuses objects in a missing one)."""
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE, "labels": namespace_labels("local")}}


def secrets(endpoints: dict[str, Any]) -> list[dict[str, Any]]:
    """The `<name>-secrets` Secrets an external-secrets controller would sync: each service's credentials."""
    pg, redis, mq = endpoints["postgres"]["primary"], endpoints["redis"], endpoints["rabbitmq"]
    out = []
    for svc in CATALOG:
        data: dict[str, str] = {}
        if svc.database:
            data |= {"DATABASE_USER": pg["user"], "DATABASE_PASSWORD": pg["password"]}
        if svc.cache:
            data["REDIS_PASSWORD"] = redis["password"]
        if svc.broker:
            data |= {"AMQP_USERNAME": mq["user"], "AMQP_PASSWORD": mq["password"]}
        out.append({
            "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": f"{svc.name}-secrets", "namespace": NAMESPACE,
                         "labels": {"app.kubernetes.io/name": svc.name, "app.kubernetes.io/part-of": "taly",
                                    "app.kubernetes.io/managed-by": "taly-local"}},
            "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
        })
    return out


def hpa_floors(objects: list[dict[str, Any]]) -> dict[str, int]:
    """Deployment name -> its HorizontalPodAutoscaler's minReplicas: what the HPA controller scales it to at once.

    The chart's Deployments have no `replicas` (the HPA owns the count) and the local cluster runs no
    HPA controller: the launcher sets this count once, through the scale subresource, as the HPA would.
    """
    return {o["spec"]["scaleTargetRef"]["name"]: int(o["spec"].get("minReplicas") or 1)
            for o in objects if o.get("kind") == "HorizontalPodAutoscaler"
            and o["spec"].get("scaleTargetRef", {}).get("kind") == "Deployment"}
