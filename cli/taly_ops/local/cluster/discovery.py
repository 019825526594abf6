"""What clients read before they act: /version, /api, /apis, group and resource lists, and /openapi/v3.

Discovery is served in the legacy (unaggregated) format, which client-go and the Python client fall
back to when the response is plain `application/json`. The OpenAPI v3 documents declare, for each
kind, the PATCH operation with its content types and the `fieldValidation` query parameter: kubectl
then leaves field validation to the server (`fieldValidation=Strict`, which the server honours) and
computes apply's strategic patches from its own built-in types, exactly as against EKS. The
documents carry no component schemas (kubectl explain has nothing to explain); /openapi/v2 is 404.
"""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from typing import Any

from . import resources
from .resources import Resource

VERSION = {
    "major": "1",
    "minor": "35",
    "emulationMajor": "1",
    "emulationMinor": "35",
    "minCompatibilityMajor": "1",
    "minCompatibilityMinor": "34",
    "gitVersion": "v1.35.0-taly-local",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2025-12-17T00:00:00Z",
    "goVersion": "go1.25.5",
    "compiler": "gc",
    "platform": "linux/amd64",
}


def api_versions(server_address: str) -> dict[str, Any]:
    return {"kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}]}


def _group(name: str, versions: list[str]) -> dict[str, Any]:
    listed = [{"groupVersion": f"{name}/{v}", "version": v} for v in versions]
    return {"name": name, "versions": listed, "preferredVersion": listed[0]}


def api_groups() -> dict[str, Any]:
    groups = [_group(name, versions) for name, versions in resources.group_versions().items() if name]
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def api_group(name: str) -> dict[str, Any] | None:
    versions = resources.group_versions().get(name)
    if not name or not versions:
        return None
    return {"kind": "APIGroup", "apiVersion": "v1", **_group(name, versions)}


def resource_list(group: str, version: str) -> dict[str, Any] | None:
    served = resources.in_group_version(group, version)
    if not served:
        return None
    entries = [entry for resource in served for entry in resource.discovery()]
    return {"kind": "APIResourceList", "apiVersion": "v1",
            "groupVersion": f"{group}/{version}" if group else version, "resources": entries}


def _gv_path(group: str, version: str) -> str:
    return f"apis/{group}/{version}" if group else f"api/{version}"


@lru_cache(maxsize=32)
def _document(group: str, version: str) -> bytes:
    paths: dict[str, Any] = {}
    for resource in resources.in_group_version(group, version):
        base = "/" + _gv_path(group, version)
        scope = f"{base}/namespaces/{{namespace}}/{resource.plural}" if resource.namespaced \
            else f"{base}/{resource.plural}"
        gvk = {"group": group, "version": version, "kind": resource.kind}
        paths[scope] = {"get": _operation(resource, "list", gvk), "post": _operation(resource, "create", gvk)}
        paths[scope + "/{name}"] = {
            "get": _operation(resource, "read", gvk),
            "put": _operation(resource, "replace", gvk),
            "patch": _operation(resource, "patch", gvk),
            "delete": _operation(resource, "delete", gvk),
        }
        if resource.status:
            paths[scope + "/{name}/status"] = {"get": _operation(resource, "read", gvk),
                                               "patch": _operation(resource, "patch", gvk)}
    doc = {"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": VERSION["gitVersion"]},
           "paths": paths, "components": {"schemas": {}}}
    return json.dumps(doc, separators=(",", ":")).encode()


def _operation(resource: Resource, action: str, gvk: dict[str, str]) -> dict[str, Any]:
    op: dict[str, Any] = {
        "operationId": f"{action}{resource.kind}",
        "x-kubernetes-action": {"list": "list", "read": "get", "replace": "put"}.get(action, action),
        "x-kubernetes-group-version-kind": gvk,
        "parameters": [{"name": p, "in": "query", "schema": {"type": "string", "uniqueItems": True}}
                       for p in ("dryRun", "fieldManager", "fieldValidation", "pretty")],
        "responses": {"200": {"description": "OK"}},
    }
    if action == "patch":
        op["requestBody"] = {"content": {t: {"schema": {"type": "object"}} for t in (
            "application/json-patch+json", "application/merge-patch+json",
            "application/strategic-merge-patch+json")}, "required": True}
    return op


def openapi_index() -> dict[str, Any]:
    paths = {}
    for group, versions in resources.group_versions().items():
        for version in versions:
            digest = hashlib.sha512(_document(group, version)).hexdigest().upper()[:128]
            path = _gv_path(group, version)
            paths[path] = {"serverRelativeURL": f"/openapi/v3/{path}?hash={digest}"}
    return {"paths": paths}


def openapi_document(path: str) -> bytes | None:
    """The OpenAPI v3 document of `api/v1` or `apis/<group>/<version>`, or None."""
    parts = path.strip("/").split("/")
    if parts[:1] == ["api"] and len(parts) == 2:
        group, version = "", parts[1]
    elif parts[:1] == ["apis"] and len(parts) == 3:
        group, version = parts[1], parts[2]
    else:
        return None
    if not resources.in_group_version(group, version):
        return None
    return _document(group, version)
