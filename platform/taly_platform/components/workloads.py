"""Workloads on the cluster: the namespace, its RBAC, quota and limits, and the CMS services from charts/.

Services come from the shared chart `charts/taly-service` through `helm.v3.Chart` (rendered
client-side, so every Kubernetes object is a Pulumi resource). Images are set on first deploy;
afterwards `pulumi up` ignores them, because releases belong to the ops CLI's promotions.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from ..catalog import CATALOG
from .. import releases
from ..config import ServicesConfig
from ..values import mebibytes, millicores
from .base import child

CHART = releases.CHART
IMAGE_PATH = "spec.template.spec.containers[0].image"
GROUPS = {"platform": "taly:platform", "oncall": "taly:oncall", "ci": "taly:ci"}


@dataclass
class WorkloadsArgs:
    prefix: str  # of the AWS resources\' names, e.g. "taly-prod"
    environment: str
    region: str
    services: ServicesConfig
    kube_version: str
    cluster_name: pulumi.Input[str]
    cluster_endpoint: pulumi.Input[str]
    cluster_ca: pulumi.Input[str]
    role_arns: dict[str, pulumi.Input[str]]
    web_acl_arn: pulumi.Input[str]
    data_cidrs: list[str]
    tags: dict[str, str]
    chart_dir: Path = CHART


def kubeconfig(name: pulumi.Input[str], endpoint: pulumi.Input[str], ca: pulumi.Input[str], region: str) -> pulumi.Output[str]:
    """A kubeconfig that authenticates with `aws eks get-token` (no static credentials)."""
    return pulumi.Output.all(name, endpoint, ca).apply(lambda a: json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": a[0],
        "clusters": [{"name": a[0], "cluster": {"server": a[1], "certificate-authority-data": a[2]}}],
        "contexts": [{"name": a[0], "context": {"cluster": a[0], "user": a[0]}}],
        "users": [{"name": a[0], "user": {"exec": {
            "apiVersion": "client.authentication.k8s.io/v1beta1", "command": "aws",
            "args": ["eks", "get-token", "--cluster-name", a[0], "--region", region]}}}],
    }))


def quota(services: ServicesConfig) -> dict[str, str]:
    """Room for every service at its maximum, plus one surge pod each during a rolling update."""
    pods = cpu_req = cpu_lim = mem_req = mem_lim = 0
    for svc in CATALOG:
        s = services.sizing_for(svc.name)
        n = s.max_replicas + 1
        pods += n
        cpu_req += n * millicores(s.cpu_request)
        cpu_lim += n * millicores(s.cpu_limit)
        mem_req += n * mebibytes(s.memory_request)
        mem_lim += n * mebibytes(s.memory_limit)
    return {"pods": str(pods), "requests.cpu": f"{cpu_req}m", "limits.cpu": f"{cpu_lim}m",
            "requests.memory": f"{mem_req}Mi", "limits.memory": f"{mem_lim}Mi"}


def release_values(args: WorkloadsArgs, service: str) -> dict[str, Any]:
    """The chart values of one service (releases.py: the values path the local cluster shares)."""
    return releases.release_values(service, environment=args.environment, region=args.region, services=args.services,
                                   role_arn=args.role_arns[service], web_acl_arn=args.web_acl_arn,
                                   data_cidrs=args.data_cidrs, chart_dir=args.chart_dir)


def _images_belong_to_promotions(obj: dict[str, Any], opts: pulumi.ResourceOptions) -> None:
    if obj.get("kind") == "Deployment":
        opts.ignore_changes = [*(opts.ignore_changes or []), IMAGE_PATH]


class Workloads(pulumi.ComponentResource):
    def __init__(self, name: str, args: WorkloadsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("taly:workloads:Workloads", name, None, opts)
        n, s, ns = args.prefix, args.services, args.services.namespace

        for group, arns in s.access.model_dump().items():
            for i, arn in enumerate(arns):
                aws.eks.AccessEntry(f"{n}-{group}-{i}", cluster_name=args.cluster_name, principal_arn=arn,
                                    kubernetes_groups=[GROUPS[group]], tags=args.tags, opts=child(self))

        self.provider = k8s.Provider(
            f"{n}-k8s", kubeconfig=kubeconfig(args.cluster_name, args.cluster_endpoint, args.cluster_ca, args.region),
            enable_server_side_apply=True, opts=child(self),
        )
        k = lambda **kw: child(self, provider=self.provider, **kw)  # noqa: E731

        namespace = k8s.core.v1.Namespace(
            f"{n}-namespace",
            metadata={"name": ns, "labels": releases.namespace_labels(args.environment)},
            opts=k(),
        )
        in_ns = lambda: k(depends_on=[namespace])  # noqa: E731
        meta = lambda name: {"name": name, "namespace": ns, "labels": {"app.kubernetes.io/part-of": "taly"}}  # noqa: E731

        k8s.core.v1.ResourceQuota(f"{n}-quota", metadata=meta("taly-services"), spec={"hard": quota(s)}, opts=in_ns())
        largest = max((s.sizing_for(svc.name) for svc in CATALOG), key=lambda z: millicores(z.cpu_limit))
        k8s.core.v1.LimitRange(
            f"{n}-limits", metadata=meta("taly-defaults"),
            spec={"limits": [{
                "type": "Container",
                "defaultRequest": {"cpu": "100m", "memory": "128Mi"},
                "default": {"cpu": "500m", "memory": "512Mi"},
                "max": {"cpu": largest.cpu_limit, "memory": max((s.sizing_for(x.name).memory_limit for x in CATALOG), key=mebibytes)},
            }]},
            opts=in_ns(),
        )
        self._rbac(n, ns, k, in_ns)

        self.charts = {}
        for svc in CATALOG:
            self.charts[svc.name] = k8s.helm.v3.Chart(
                releases.release_name(n, svc.name),
                k8s.helm.v3.LocalChartOpts(
                    path=str(args.chart_dir), namespace=ns, values=release_values(args, svc.name),
                    kube_version=args.kube_version, transformations=[_images_belong_to_promotions],
                ),
                opts=in_ns(),
            )
        self.namespace = ns
        self.register_outputs({"namespace": ns})

    def _rbac(self, n: str, ns: str, k, in_ns) -> None:
        """Roles for the platform team (all in the namespace), on-call (read, restart) and CI (roll images)."""
        read = {"apiGroups": ["", "apps", "autoscaling", "policy", "networking.k8s.io", "batch"],
                "resources": ["*"], "verbs": ["get", "list", "watch"]}
        roles = {
            "platform": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}],
            "oncall": [read,
                       {"apiGroups": ["apps"], "resources": ["deployments", "deployments/scale"], "verbs": ["patch"]},
                       {"apiGroups": [""], "resources": ["pods"], "verbs": ["delete"]},
                       {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]}],
            "ci": [{"apiGroups": ["apps"], "resources": ["deployments", "replicasets"], "verbs": ["get", "list", "watch"]},
                   {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["patch", "update"]},
                   {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}],
        }
        for who, rules in roles.items():
            name = f"taly-{who}"
            k8s.rbac.v1.Role(f"{n}-role-{who}", metadata={"name": name, "namespace": ns}, rules=rules, opts=in_ns())
            k8s.rbac.v1.RoleBinding(
                f"{n}-binding-{who}", metadata={"name": name, "namespace": ns},
                role_ref={"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
                subjects=[{"kind": "Group", "name": GROUPS[who], "apiGroup": "rbac.authorization.k8s.io"}],
                opts=in_ns(),
            )
        k8s.rbac.v1.ClusterRole(f"{n}-oncall-cluster-read", metadata={"name": "taly-oncall-cluster-read"},
                                rules=[{"apiGroups": [""], "resources": ["nodes", "namespaces", "events"], "verbs": ["get", "list", "watch"]}],
                                opts=k())
        k8s.rbac.v1.ClusterRoleBinding(
            f"{n}-oncall-cluster-read", metadata={"name": "taly-oncall-cluster-read"},
            role_ref={"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "taly-oncall-cluster-read"},
            subjects=[{"kind": "Group", "name": GROUPS["oncall"], "apiGroup": "rbac.authorization.k8s.io"}], opts=k(),
        )
