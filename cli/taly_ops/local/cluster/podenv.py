"""A container's environment as the kubelet builds it: envFrom first, then env in order, `$(VAR)` expanded.

Pure: ConfigMaps and Secrets come through a lookup function, so this is tested without a store. What
the kubelet cannot resolve (a missing ConfigMap that is not optional, a key not there, a field it
does not model) is an EnvError, which the kubelet reports as the container's CreateContainerConfigError.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any, Callable

Obj = dict[str, Any]
Lookup = Callable[[str, str, str], Obj | None]   # (plural, namespace, name) -> the object, None when absent

_ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
_REF = re.compile(r"\$\$|\$\(([-._a-zA-Z][-._a-zA-Z0-9]*)\)")
_LABEL_FIELD = re.compile(r"^metadata\.(labels|annotations)\['([^']+)'\]$")


class EnvError(Exception):
    """The message the kubelet puts in the container's waiting state."""


def _data(obj: Obj, kind: str) -> dict[str, str]:
    """A ConfigMap's data, or a Secret's data decoded (stringData as the API server would have merged it)."""
    if kind == "configmaps":
        return {k: str(v) for k, v in (obj.get("data") or {}).items()}
    out = {}
    for k, v in (obj.get("data") or {}).items():
        try:
            out[k] = base64.b64decode(v, validate=True).decode("utf-8")
        except (binascii.Error, ValueError, TypeError):
            raise EnvError(f"secret {obj['metadata']['name']!r}: key {k!r} is not base64-encoded UTF-8") from None
    out.update({k: str(v) for k, v in (obj.get("stringData") or {}).items()})
    return out


_WHAT = {"configmaps": "configmap", "secrets": "secret"}


def _source(lookup: Lookup, kind: str, namespace: str, ref: Obj) -> dict[str, str] | None:
    name = ref.get("name") or ""
    obj = lookup(kind, namespace, name)
    if obj is None:
        if ref.get("optional"):
            return None
        raise EnvError(f'{_WHAT[kind]} "{name}" not found')
    return _data(obj, kind)


def field_value(pod: Obj, path: str, pod_ip: str, host_ip: str) -> str:
    meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
    simple = {
        "metadata.name": meta.get("name", ""), "metadata.namespace": meta.get("namespace", ""),
        "metadata.uid": meta.get("uid", ""), "spec.nodeName": spec.get("nodeName", ""),
        "spec.serviceAccountName": spec.get("serviceAccountName", ""), "status.podIP": pod_ip,
        "status.podIPs": pod_ip, "status.hostIP": host_ip, "status.hostIPs": host_ip,
    }
    if path in simple:
        return simple[path]
    m = _LABEL_FIELD.match(path)
    if m:
        return str((meta.get(m[1]) or {}).get(m[2], ""))
    raise EnvError(f"unsupported fieldRef fieldPath {path!r}")


def expand(value: str, env: dict[str, str]) -> str:
    """Kubernetes' $(VAR) expansion: defined names replaced, $$ escapes a $, unknown references kept as written."""
    def sub(m: re.Match) -> str:
        if m[0] == "$$":
            return "$"
        return env.get(m[1], m[0])
    return _REF.sub(sub, value)


def resolve(pod: Obj, container: Obj, lookup: Lookup, pod_ip: str, host_ip: str) -> dict[str, str]:
    """The container's environment (only what the pod spec gives; the kubelet adds HOSTNAME and PATH)."""
    namespace = (pod.get("metadata") or {}).get("namespace") or "default"
    env: dict[str, str] = {}
    for source in container.get("envFrom") or []:
        prefix = source.get("prefix") or ""
        if "configMapRef" in source:
            data = _source(lookup, "configmaps", namespace, source["configMapRef"] or {})
        elif "secretRef" in source:
            data = _source(lookup, "secrets", namespace, source["secretRef"] or {})
        else:
            raise EnvError("envFrom entry names neither configMapRef nor secretRef")
        for key, value in (data or {}).items():
            if _ENV_NAME.match(prefix + key):   # invalid names are skipped, as the kubelet does
                env[prefix + key] = value
    for var in container.get("env") or []:
        name = var.get("name") or ""
        if "valueFrom" not in var or var.get("valueFrom") is None:
            env[name] = expand(str(var.get("value") or ""), env)
            continue
        value = _value_from(pod, var["valueFrom"], lookup, namespace, (pod_ip, host_ip))
        if value is not None:
            env[name] = value
    return env


def _value_from(pod: Obj, source: Obj, lookup: Lookup, namespace: str, ips: tuple[str, str]) -> str | None:
    for kind, key in (("configmaps", "configMapKeyRef"), ("secrets", "secretKeyRef")):
        if key in source:
            ref = source[key] or {}
            data = _source(lookup, kind, namespace, ref)
            if data is None:
                return None
            if ref.get("key") not in data:
                if ref.get("optional"):
                    return None
                what = "ConfigMap" if kind == "configmaps" else "Secret"
                raise EnvError(f"couldn't find key {ref.get('key')} in {what} {namespace}/{ref.get('name')}")
            return data[ref["key"]]
    if "fieldRef" in source:
        return field_value(pod, (source["fieldRef"] or {}).get("fieldPath", ""), *ips)
    raise EnvError(f"valueFrom {', '.join(source) or '{}'} is not modelled by the local kubelet "
                   "(configMapKeyRef, secretKeyRef and fieldRef are)")
