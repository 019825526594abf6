"""What every controller reads off objects: owner references, label selectors, times, pod readiness.

Objects are plain JSON dicts as the store returns them; the helpers read them the way the API types
default (a missing list is empty, a missing `replicas` is 1), so an object that skipped the API
server's defaulting is still handled as Kubernetes would.
"""

from __future__ import annotations

import calendar
import time
from typing import Any

from ..apierrors import ApiError
from ..selectors import from_label_selector

Obj = dict[str, Any]


# --- metadata ---------------------------------------------------------------------------------------

def meta(obj: Obj) -> Obj:
    return obj.setdefault("metadata", {})


def key_of(obj: Obj) -> str:
    """The work queue key: namespace/name (name alone for a cluster-scoped object)."""
    m = obj.get("metadata") or {}
    ns = m.get("namespace") or ""
    return f"{ns}/{m.get('name', '')}" if ns else m.get("name", "")


def split_key(key: str) -> tuple[str | None, str]:
    ns, sep, name = key.partition("/")
    return (ns, name) if sep else (None, ns)


def annotations(obj: Obj) -> dict[str, str]:
    return (obj.get("metadata") or {}).get("annotations") or {}


def controller_of(obj: Obj) -> Obj | None:
    """The ownerReference with controller: true, as metav1.GetControllerOf."""
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("controller"):
            return ref
    return None


def new_controller_ref(owner: Obj, kind: str, api_version: str) -> Obj:
    """metav1.NewControllerRef: the owner's identity, controller and blockOwnerDeletion true."""
    m = owner["metadata"]
    return {"apiVersion": api_version, "kind": kind, "name": m["name"], "uid": m["uid"],
            "controller": True, "blockOwnerDeletion": True}


def is_deleting(obj: Obj) -> bool:
    return bool((obj.get("metadata") or {}).get("deletionTimestamp"))


# --- label selectors (metav1.LabelSelector) ---------------------------------------------------------

def selector_matches(selector: Obj | None, labels: dict[str, str] | None) -> bool:
    """LabelSelectorAsSelector(selector).Matches(labels): None selects nothing, {} everything, an
    invalid selector nothing (the API server would have refused it)."""
    try:
        return from_label_selector(selector).matches(labels)
    except ApiError:
        return False


def selector_is_empty(selector: Obj | None) -> bool:
    """An empty (non-nil) selector: it would select every pod, which the Deployment controller refuses."""
    return selector is not None and not selector.get("matchLabels") and not selector.get("matchExpressions")


# --- times ------------------------------------------------------------------------------------------

def rfc3339(t: float) -> str:
    """metav1.Time as the API server writes it: whole seconds, UTC, `Z`."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(t)))


def parse_time(value: str | None) -> float | None:
    """Seconds since the epoch of an RFC 3339 time (fractions and offsets accepted), None if absent."""
    if not value:
        return None
    text = value.strip()
    offset = 0
    if text.endswith("Z") or text.endswith("z"):
        text = text[:-1]
    elif len(text) > 6 and text[-6] in "+-" and text[-3] == ":":
        sign = 1 if text[-6] == "+" else -1
        offset = sign * (int(text[-5:-3]) * 3600 + int(text[-2:]) * 60)
        text = text[:-6]
    whole, _, fraction = text.partition(".")
    seconds = calendar.timegm(time.strptime(whole, "%Y-%m-%dT%H:%M:%S"))
    return seconds - offset + (float("0." + fraction) if fraction else 0.0)


# --- pods -------------------------------------------------------------------------------------------

def ready_condition(pod: Obj) -> Obj | None:
    for c in (pod.get("status") or {}).get("conditions") or []:
        if c.get("type") == "Ready":
            return c
    return None


def is_pod_ready(pod: Obj) -> bool:
    c = ready_condition(pod)
    return c is not None and c.get("status") == "True"


def is_pod_available(pod: Obj, min_ready_seconds: int, now: float) -> bool:
    """podutil.IsPodAvailable: ready, and for longer than minReadySeconds (strictly)."""
    if not is_pod_ready(pod):
        return False
    if not min_ready_seconds:
        return True
    since = parse_time((ready_condition(pod) or {}).get("lastTransitionTime"))
    return since is not None and since + min_ready_seconds < now


def is_pod_active(pod: Obj) -> bool:
    """controller.IsPodActive: not Succeeded/Failed and not being deleted."""
    phase = (pod.get("status") or {}).get("phase")
    return phase not in ("Succeeded", "Failed") and not is_deleting(pod)


def replicas_of(obj: Obj) -> int:
    """spec.replicas, defaulted to 1 as the API server does for Deployments and ReplicaSets."""
    value = (obj.get("spec") or {}).get("replicas")
    return 1 if value is None else int(value)
