"""What the API server refuses with 422 Invalid (or 400 for a body of the wrong shape), worded as upstream.

Not the whole of upstream's validation: names, namespaces, labels and annotations everywhere, and the
checks of the workload kinds (selector matches the template, containers named and with an image,
replicas >= 0, an immutable Deployment/ReplicaSet selector). Enough that a manifest EKS refuses is
refused here too in the common cases, and that nothing stored can crash a reader.
"""

from __future__ import annotations

import re
from typing import Any

from . import apierrors
from .resources import Resource
from .selectors import from_label_selector, label_key_problem, label_value_problem

Obj = dict[str, Any]
_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
SUBDOMAIN_TEXT = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must "
    "start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is "
    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
LABEL_TEXT = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and "
    "end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is "
    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)
_DNS_LABEL_NAMES = {"namespaces", "services"}
_WORKLOADS = {"deployments", "replicasets"}


def validate(resource: Resource, obj: Obj, old: Obj | None = None) -> None:
    """ApiError 400/422 when `obj` (the whole object about to be stored) is not acceptable."""
    meta = obj.setdefault("metadata", {})
    name = meta.get("name") or ""
    causes: list[tuple[str, str, str]] = []
    if not name:
        causes.append(("metadata.name", "FieldValueRequired", "Required value: name or generateName is required"))
    elif resource.plural in _DNS_LABEL_NAMES and (len(name) > 63 or not _LABEL.match(name)):
        causes.append(("metadata.name", "FieldValueInvalid", f'Invalid value: "{name}": {LABEL_TEXT}'))
    elif len(name) > 253 or not _SUBDOMAIN.match(name):
        causes.append(("metadata.name", "FieldValueInvalid", f'Invalid value: "{name}": {SUBDOMAIN_TEXT}'))
    if resource.namespaced and not meta.get("namespace"):
        causes.append(("metadata.namespace", "FieldValueRequired", "Required value"))
    for key, value in (meta.get("labels") or {}).items():
        problem = label_key_problem(key) or label_value_problem(value)
        if problem:
            causes.append(("metadata.labels", "FieldValueInvalid", f'Invalid value: "{key}": {problem}'))
    for key in meta.get("annotations") or {}:
        problem = label_key_problem(key)
        if problem:
            causes.append(("metadata.annotations", "FieldValueInvalid", f'Invalid value: "{key}": {problem}'))
    spec = obj.get("spec") or {}
    if resource.plural in _WORKLOADS:
        causes += _workload(spec, (old or {}).get("spec") if old else None)
    elif resource.plural == "pods":
        causes += _pod_spec(spec, "spec")
    if causes:
        raise apierrors.invalid(resource.kind, resource.group, name, causes)


def _workload(spec: Obj, old_spec: Obj | None) -> list[tuple[str, str, str]]:
    causes: list[tuple[str, str, str]] = []
    replicas = spec.get("replicas")
    if replicas is not None and (not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0):
        causes.append(("spec.replicas", "FieldValueInvalid",
                       f"Invalid value: {replicas}: must be greater than or equal to 0"))
    selector = spec.get("selector")
    template = spec.get("template") if isinstance(spec.get("template"), dict) else {}
    labels = (template.get("metadata") or {}).get("labels") or {}
    if not isinstance(selector, dict) or not (selector.get("matchLabels") or selector.get("matchExpressions")):
        causes.append(("spec.selector", "FieldValueRequired", "Required value"))
    else:
        try:
            matches = from_label_selector(selector).matches(labels)
        except apierrors.ApiError as exc:
            causes.append(("spec.selector", "FieldValueInvalid", f"Invalid value: {exc.message}"))
            matches = True
        if not matches:
            shown = "map[string]string{" + ", ".join(f'"{k}":"{v}"' for k, v in sorted(labels.items())) + "}"
            causes.append(("spec.template.metadata.labels", "FieldValueInvalid",
                           f"Invalid value: {shown}: `selector` does not match template `labels`"))
        if old_spec is not None and old_spec.get("selector") != selector:
            causes.append(("spec.selector", "FieldValueInvalid",
                           f"Invalid value: {_go_selector(selector)}: field is immutable"))
    causes += _pod_spec(template.get("spec") or {}, "spec.template.spec")
    return causes


def _go_selector(selector: Obj) -> str:
    labels = ", ".join(f'"{k}":"{v}"' for k, v in sorted((selector.get("matchLabels") or {}).items()))
    return f"v1.LabelSelector{{MatchLabels:map[string]string{{{labels}}}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}}"


def _pod_spec(spec: Obj, at: str) -> list[tuple[str, str, str]]:
    containers = spec.get("containers")
    if not isinstance(containers, list) or not containers:
        return [(f"{at}.containers", "FieldValueRequired", "Required value")]
    causes: list[tuple[str, str, str]] = []
    seen: set[str] = set()
    for kind in ("initContainers", "containers"):
        listed = spec.get(kind) or []
        if not isinstance(listed, list):
            causes.append((f"{at}.{kind}", "FieldValueInvalid", "Invalid value: must be a list"))
            continue
        for i, container in enumerate(listed):
            where = f"{at}.{kind}[{i}]"
            if not isinstance(container, dict):
                causes.append((where, "FieldValueInvalid", "Invalid value: must be an object"))
                continue
            name = container.get("name")
            if not name:
                causes.append((f"{where}.name", "FieldValueRequired", "Required value"))
            elif not isinstance(name, str) or len(name) > 63 or not _LABEL.match(name):
                causes.append((f"{where}.name", "FieldValueInvalid", f'Invalid value: "{name}": {LABEL_TEXT}'))
            elif name in seen:
                causes.append((f"{where}.name", "FieldValueDuplicate", f'Duplicate value: "{name}"'))
            else:
                seen.add(name)
            if not container.get("image"):
                causes.append((f"{where}.image", "FieldValueRequired", "Required value"))
    return causes
