"""The REST verbs over the store, as the API server's handlers run them (no HTTP here: server.py does that).

Each verb takes the parsed request (a `Target`: resource, namespace, name, subresource; the query;
the decoded body) and returns (HTTP code, body, warnings). What they add to the store's rules is
the request-level part of upstream's handlers: URL and body must agree (name, namespace, kind),
NamespaceLifecycle (no creates in a namespace that does not exist), `fieldValidation`
(Strict refuses unknown or duplicate fields, Warn warns, Ignore ignores), `dryRun=All`, list
pagination (`limit`/`continue`), DeleteOptions, and the scale and status subresources.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

from . import apierrors, patch, schema
from .resources import Resource
from .selectors import selector_string
from .store import Obj, Store

Response = tuple[int, Any, list[str]]


@dataclass(frozen=True)
class Target:
    resource: Resource
    namespace: str | None  # None: all namespaces (lists) or a cluster-scoped kind
    name: str | None = None
    subresource: str | None = None


def _flag(query: dict[str, str], name: str) -> bool:
    return query.get(name, "").lower() in ("true", "1")


def dry_run(query: dict[str, str]) -> bool:
    value = query.get("dryRun", "")
    if value and value != "All":
        raise apierrors.bad_request(f'Invalid value: "{value}": supported values: "All"')
    return value == "All"


def _strictness(query: dict[str, str]) -> str:
    value = query.get("fieldValidation", "Warn") or "Warn"
    if value not in ("Ignore", "Warn", "Strict"):
        raise apierrors.bad_request(f'Invalid value: "{value}": fieldValidation must be one of Ignore, Warn or Strict')
    return value


def check_fields(resource: Resource, obj: Any, query: dict[str, str], duplicates: list[str]) -> list[str]:
    """fieldValidation over a request body: the 400 (Strict) or the warnings (Warn) upstream gives."""
    _, unknown = schema.decode(resource, obj)
    problems = [f'unknown field "{f}"' for f in unknown] + [f'duplicate field "{f}"' for f in duplicates]
    mode = _strictness(query)
    if problems and mode == "Strict":
        kind, version = resource.kind, resource.version
        raise apierrors.bad_request(f'{kind} in version "{version}" cannot be handled as a {kind}: '
                                    f"strict decoding error: {', '.join(problems)}")
    return problems if mode == "Warn" else []


def _scale(obj: Obj) -> Obj:
    meta = obj["metadata"]
    return {
        "kind": "Scale", "apiVersion": "autoscaling/v1",
        "metadata": {k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
                     if k in meta},
        "spec": {"replicas": (obj.get("spec") or {}).get("replicas", 0)},
        "status": {"replicas": (obj.get("status") or {}).get("replicas", 0),
                   "selector": selector_string((obj.get("spec") or {}).get("selector") or {})},
    }


class Api:
    def __init__(self, store: Store) -> None:
        self.store = store

    # ---- reads ----

    def get(self, t: Target) -> Obj:
        obj = self.store.get(t.resource.plural, t.namespace, t.name or "")
        return _scale(obj) if t.subresource == "scale" else obj

    def list(self, t: Target, query: dict[str, str]) -> tuple[list[Obj], Obj]:
        """(items as stored, the list's metadata) honouring limit and continue."""
        items, rv = self.store.list_shared(t.resource.plural, t.namespace, query.get("labelSelector", ""),
                                           query.get("fieldSelector", ""))
        meta: Obj = {"resourceVersion": rv}
        token = query.get("continue")
        if token:
            try:
                start = json.loads(base64.urlsafe_b64decode(token.encode()))["start"]
            except (ValueError, KeyError, TypeError):
                raise apierrors.bad_request(f"continue key is not valid: {token}") from None
            items = [o for o in items if [o["metadata"].get("namespace", ""), o["metadata"]["name"]] > start]
        try:
            limit = int(query.get("limit") or 0)
        except ValueError:
            raise apierrors.bad_request(f'Invalid value: "{query.get("limit")}": limit must be an integer') from None
        if 0 < limit < len(items):
            last = items[limit - 1]["metadata"]
            meta["continue"] = base64.urlsafe_b64encode(json.dumps(
                {"start": [last.get("namespace", ""), last["name"]], "rv": rv}).encode()).decode()
            meta["remainingItemCount"] = len(items) - limit
            items = items[:limit]
        return items, meta

    # ---- writes ----

    def _namespace_exists(self, t: Target) -> None:
        if t.resource.namespaced:
            self.store.get("namespaces", None, t.namespace or "")

    def create(self, t: Target, body: Any, query: dict[str, str], duplicates: list[str]) -> Response:
        if t.name or t.subresource:
            raise apierrors.method_not_allowed()
        obj = self._body(t, body)
        if t.resource.namespaced:
            if not t.namespace:
                raise apierrors.method_not_allowed()
            meta = obj["metadata"]
            if meta.get("namespace") and meta["namespace"] != t.namespace:
                raise apierrors.bad_request("the namespace of the provided object does not match the namespace "
                                            "sent on the request")
            meta["namespace"] = t.namespace
        warnings = check_fields(t.resource, obj, query, duplicates)
        self._namespace_exists(t)
        return 201, self.store.create(t.resource.plural, obj, dry_run=dry_run(query)), warnings

    def update(self, t: Target, body: Any, query: dict[str, str], duplicates: list[str]) -> Response:
        if t.subresource == "scale":
            scale = body if isinstance(body, dict) else {}
            return self._set_scale(t, (scale.get("spec") or {}).get("replicas"), query)
        obj = self._body(t, body)
        self._same_object(t, obj)
        warnings = check_fields(t.resource, obj, query, duplicates)
        updated = self.store.update(t.resource.plural, obj, t.subresource, dry_run=dry_run(query))
        return 200, updated, warnings

    def patch(self, t: Target, content_type: str, body: Any, query: dict[str, str]) -> Response:
        if content_type not in patch.TYPES:
            raise apierrors.unsupported_media_type(content_type, patch.ACCEPTED)
        if t.subresource == "scale":
            scale = patch.apply(content_type, _scale(self.get(t)), body, schema.for_kind("autoscaling/v1", "Scale"))
            return self._set_scale(t, ((scale or {}).get("spec") or {}).get("replicas"), query)
        warnings: list[str] = []

        def apply(obj: Obj) -> None:
            before = obj["metadata"].get("resourceVersion")
            patched = patch.apply(content_type, obj, body, schema.for_resource(t.resource))
            if not isinstance(patched, dict):
                raise apierrors.bad_request("the patched object is not a JSON object")
            self._same_object(t, patched)
            warnings.extend(check_fields(t.resource, patched, query, []))
            given = (patched.get("metadata") or {}).get("resourceVersion")
            if given and given != before:
                raise apierrors.conflict(t.resource.plural, t.resource.group, t.name or "", apierrors.STALE)
            obj.clear()
            obj.update(patched)

        patched = self.store.mutate(t.resource.plural, t.namespace, t.name or "", apply, t.subresource,
                                    dry_run=dry_run(query))
        return 200, patched, warnings

    def _set_scale(self, t: Target, replicas: Any, query: dict[str, str]) -> Response:
        if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
            raise apierrors.invalid("Scale", "autoscaling", t.name or "", [(
                "spec.replicas", "FieldValueInvalid", f"Invalid value: {replicas}: must be greater than or equal to 0")])
        updated = self.store.mutate(t.resource.plural, t.namespace, t.name or "",
                                    lambda o: o.setdefault("spec", {}).update(replicas=replicas),
                                    dry_run=dry_run(query))
        return 200, _scale(updated), []

    def delete(self, t: Target, body: Any, query: dict[str, str]) -> Response:
        if t.subresource:
            raise apierrors.method_not_allowed()
        if t.resource.plural == "namespaces" and t.name in ("default", "kube-system", "kube-public"):
            raise apierrors.forbidden("namespaces", "", t.name, "this namespace may not be deleted")
        if dry_run(query) or (isinstance(body, dict) and body.get("dryRun")):
            raise apierrors.bad_request("dryRun is not supported for deletions by the local cluster")
        options = body if isinstance(body, dict) else {}
        grace = query.get("gracePeriodSeconds", options.get("gracePeriodSeconds"))
        try:
            grace = None if grace in (None, "") else int(grace)
        except (TypeError, ValueError):
            raise apierrors.bad_request(f'Invalid value: "{grace}": gracePeriodSeconds must be an integer') from None
        propagation = query.get("propagationPolicy") or options.get("propagationPolicy") or "Background"
        if options.get("orphanDependents") is True:
            propagation = "Orphan"
        if propagation not in ("Background", "Foreground", "Orphan"):
            raise apierrors.bad_request(f'propagationPolicy: Unsupported value: "{propagation}": supported values: '
                                        '"Foreground", "Background", "Orphan"')
        pre = options.get("preconditions") or {}
        current = self.store.get(t.resource.plural, t.namespace, t.name or "")
        if pre.get("resourceVersion") and pre["resourceVersion"] != current["metadata"]["resourceVersion"]:
            why = (f"Precondition failed: ResourceVersion in precondition: {pre['resourceVersion']}, "
                   f"ResourceVersion in object meta: {current['metadata']['resourceVersion']}")
            raise apierrors.conflict(t.resource.plural, t.resource.group, t.name or "", why)
        gone = self.store.delete(t.resource.plural, t.namespace, t.name or "", grace, propagation,
                                 uid=pre.get("uid"))
        try:
            still = self.store.get(t.resource.plural, t.namespace, t.name or "")
        except apierrors.ApiError:
            still = None
        if still is not None and still["metadata"].get("uid") == gone["metadata"].get("uid"):
            return 200, still, []
        details: Obj = {"name": t.name}
        if t.resource.group:
            details["group"] = t.resource.group
        details.update(kind=t.resource.plural, uid=gone["metadata"].get("uid"))
        return 200, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                     "details": details}, []

    def delete_collection(self, t: Target, body: Any, query: dict[str, str]) -> Response:
        if "deletecollection" not in t.resource.verbs:
            raise apierrors.method_not_allowed()
        items, meta = self.list(t, {k: v for k, v in query.items() if k in ("labelSelector", "fieldSelector")})
        deleted = []
        for item in list(items):
            one = Target(t.resource, item["metadata"].get("namespace"), item["metadata"]["name"])
            try:
                self.delete(one, body, query)
                deleted.append(item)
            except apierrors.ApiError as exc:
                if exc.code != 404:
                    raise
        return 200, {"kind": t.resource.list_kind, "apiVersion": t.resource.api_version,
                     "metadata": {"resourceVersion": self.store.resource_version}, "items": deleted}, []

    # ---- helpers ----

    def _body(self, t: Target, body: Any) -> Obj:
        if not isinstance(body, dict):
            raise apierrors.bad_request("the body of the request was not a JSON object")
        version, kind = body.get("apiVersion"), body.get("kind")
        if version and version != t.resource.api_version:
            raise apierrors.bad_request(f"the API version in the data ({version}) does not match the expected API "
                                        f"version ({t.resource.api_version})")
        if kind and kind != t.resource.kind:
            raise apierrors.bad_request(f"the kind in the data ({kind}) does not match the expected kind "
                                        f"({t.resource.kind})")
        obj = dict(body)
        obj["metadata"] = dict(obj.get("metadata") or {}) if isinstance(obj.get("metadata") or {}, dict) \
            else obj.get("metadata")
        return obj

    @staticmethod
    def _same_object(t: Target, obj: Obj) -> None:
        meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
        if meta.get("name") != t.name:
            raise apierrors.bad_request(f"the name of the object ({meta.get('name')}) does not match the name on "
                                        f"the URL ({t.name})")
        if t.resource.namespaced and meta.get("namespace", t.namespace) != t.namespace:
            raise apierrors.bad_request("the namespace of the provided object does not match the namespace sent "
                                        "on the request")
        if t.resource.namespaced:
            meta["namespace"] = t.namespace
