"""The resource table: every kind the emulator serves, as discovery and the store see it.

One `Resource` per plural name (the store's key). The table is what `/api/v1` and
`/apis/<group>/<version>` list, what the server routes by, and what the store reads to know whether a
kind is namespaced, has a status/scale subresource, and bumps metadata.generation.
"""

from __future__ import annotations

from dataclasses import dataclass

VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


@dataclass(frozen=True)
class Resource:
    group: str  # "" for the core group
    version: str
    kind: str
    plural: str
    namespaced: bool = True
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    status: bool = False  # has a status subresource: the main resource's writes keep the stored status
    scale: bool = False  # has a scale subresource (autoscaling/v1 Scale over spec.replicas)
    generation: bool = True  # metadata.generation is kept (1 on create, +1 on spec changes)
    annotations_bump_generation: bool = False  # deployments: annotations are copied to ReplicaSets
    verbs: tuple[str, ...] = VERBS

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def list_kind(self) -> str:
        return self.kind + "List"

    @property
    def base_path(self) -> str:
        return f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"

    def discovery(self) -> list[dict]:
        """This resource and its subresources as APIResourceList entries."""
        main: dict = {
            "name": self.plural,
            "singularName": self.singular,
            "namespaced": self.namespaced,
            "kind": self.kind,
            "verbs": list(self.verbs),
        }
        if self.short_names:
            main["shortNames"] = list(self.short_names)
        if self.categories:
            main["categories"] = list(self.categories)
        entries = [main]
        if self.status:
            entries.append(_sub(self, "status", self.kind, ["get", "patch", "update"]))
        if self.scale:
            scale = _sub(self, "scale", "Scale", ["get", "patch", "update"])
            scale.update(group="autoscaling", version="v1")
            entries.append(scale)
        if self.plural == "pods":
            entries.append(_sub(self, "log", "Pod", ["get"]))
        return entries


def _sub(resource: Resource, name: str, kind: str, verbs: list[str]) -> dict:
    return {
        "name": f"{resource.plural}/{name}",
        "singularName": "",
        "namespaced": resource.namespaced,
        "kind": kind,
        "verbs": verbs,
    }


ALL = ("all",)

RESOURCES: tuple[Resource, ...] = (
    # core/v1
    Resource("", "v1", "Namespace", "namespaces", namespaced=False, short_names=("ns",), status=True,
             generation=False, verbs=("create", "delete", "get", "list", "patch", "update", "watch")),
    Resource("", "v1", "Pod", "pods", short_names=("po",), categories=ALL, status=True),
    Resource("", "v1", "Service", "services", short_names=("svc",), categories=ALL, status=True, generation=False,
             verbs=("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")),
    Resource("", "v1", "ConfigMap", "configmaps", short_names=("cm",), generation=False),
    Resource("", "v1", "Secret", "secrets", generation=False),
    Resource("", "v1", "ServiceAccount", "serviceaccounts", short_names=("sa",), generation=False),
    Resource("", "v1", "Event", "events", short_names=("ev",), generation=False),
    Resource("", "v1", "ResourceQuota", "resourcequotas", short_names=("quota",), status=True, generation=False),
    Resource("", "v1", "LimitRange", "limitranges", short_names=("limits",), generation=False),
    # apps/v1
    Resource("apps", "v1", "Deployment", "deployments", short_names=("deploy",), categories=ALL, status=True,
             scale=True, annotations_bump_generation=True),
    Resource("apps", "v1", "ReplicaSet", "replicasets", short_names=("rs",), categories=ALL, status=True,
             scale=True),
    # autoscaling/v2
    Resource("autoscaling", "v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers", short_names=("hpa",),
             categories=ALL, status=True),
    # policy/v1
    Resource("policy", "v1", "PodDisruptionBudget", "poddisruptionbudgets", short_names=("pdb",), status=True),
    # networking.k8s.io/v1
    Resource("networking.k8s.io", "v1", "NetworkPolicy", "networkpolicies", short_names=("netpol",)),
    Resource("networking.k8s.io", "v1", "Ingress", "ingresses", short_names=("ing",), status=True),
    # rbac.authorization.k8s.io/v1
    Resource("rbac.authorization.k8s.io", "v1", "Role", "roles", generation=False),
    Resource("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings", generation=False),
    # coordination.k8s.io/v1
    Resource("coordination.k8s.io", "v1", "Lease", "leases", generation=False),
)

BY_PLURAL: dict[str, Resource] = {r.plural: r for r in RESOURCES}


def by_plural(plural: str) -> Resource | None:
    return BY_PLURAL.get(plural)


def lookup(group: str, version: str, plural: str) -> Resource | None:
    """The resource served at /api(s)/<group>/<version>/.../<plural>, or None."""
    resource = BY_PLURAL.get(plural)
    if resource and resource.group == group and resource.version == version:
        return resource
    return None


def by_kind(api_version: str, kind: str) -> Resource | None:
    for resource in RESOURCES:
        if resource.kind == kind and resource.api_version == api_version:
            return resource
    return None


def group_versions() -> dict[str, list[str]]:
    """{group: [versions]} in the order the table lists them, core ("") included."""
    found: dict[str, list[str]] = {}
    for resource in RESOURCES:
        versions = found.setdefault(resource.group, [])
        if resource.version not in versions:
            versions.append(resource.version)
    return found


def in_group_version(group: str, version: str) -> list[Resource]:
    return [r for r in RESOURCES if r.group == group and r.version == version]
