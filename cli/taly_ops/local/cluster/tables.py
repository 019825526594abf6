"""`Accept: application/json;as=Table;g=meta.k8s.io;v=v1`: the columns kubectl get prints, as upstream's printers.

Columns and cells follow pkg/printers/internalversion (deployments READY/UP-TO-DATE/AVAILABLE, pods
READY/STATUS/RESTARTS with the kubelet's reasons, services TYPE/CLUSTER-IP/PORT(S), events LAST
SEEN/TYPE/REASON/OBJECT/MESSAGE...); a kind without a printer gets NAME and AGE, as upstream's
default table convertor gives.
"""

from __future__ import annotations

import calendar
import time
from typing import Any, Callable

from .selectors import selector_string

Obj = dict[str, Any]
Column = tuple[str, str, int]  # (name, type, priority: 0 always shown, 1 with -o wide)


def _seconds(stamp: str | None) -> float | None:
    if not stamp:
        return None
    try:
        return calendar.timegm(time.strptime(stamp[:19], "%Y-%m-%dT%H:%M:%S"))
    except ValueError:
        return None


def human_duration(seconds: float) -> str:
    """k8s.io/apimachinery/pkg/util/duration.HumanDuration."""
    s = int(seconds)
    if s < 0:
        return "0s" if s > -2 else "<invalid>"
    if s < 120:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        return f"{minutes}m{s % 60}s" if s % 60 else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = s // 3600
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        return f"{hours // 24}d{hours % 24}h" if hours % 24 else f"{hours // 24}d"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        years = hours // 24 // 365
        days = hours // 24 % 365
        return f"{years}y{days}d" if days else f"{years}y"
    return f"{hours // 24 // 365}y"


def age(stamp: str | None, now: float) -> str:
    then = _seconds(stamp)
    return "<unknown>" if then is None else human_duration(now - then)


def _containers(obj: Obj) -> list[Obj]:
    return ((obj.get("spec") or {}).get("template") or {}).get("spec", {}).get("containers") or []


def _names(containers: list[Obj]) -> str:
    return ",".join(c.get("name", "") for c in containers)


def _images(containers: list[Obj]) -> str:
    return ",".join(c.get("image", "") for c in containers)


def _deployment(o: Obj, now: float) -> list[Any]:
    spec, status = o.get("spec") or {}, o.get("status") or {}
    return [f"{status.get('readyReplicas', 0)}/{spec.get('replicas', 0)}", status.get("updatedReplicas", 0),
            status.get("availableReplicas", 0), age(o["metadata"].get("creationTimestamp"), now),
            _names(_containers(o)), _images(_containers(o)), selector_string(spec.get("selector") or {})]


def _replicaset(o: Obj, now: float) -> list[Any]:
    spec, status = o.get("spec") or {}, o.get("status") or {}
    return [spec.get("replicas", 0), status.get("replicas", 0), status.get("readyReplicas", 0),
            age(o["metadata"].get("creationTimestamp"), now), _names(_containers(o)), _images(_containers(o)),
            selector_string(spec.get("selector") or {})]


def pod_status(o: Obj) -> str:
    """The STATUS column: the kubelet's reason when there is one, as kubectl prints it."""
    status = o.get("status") or {}
    reason = status.get("reason") or status.get("phase") or "Unknown"
    for c in status.get("initContainerStatuses") or []:
        state = c.get("state") or {}
        if (state.get("terminated") or {}).get("exitCode", 0) != 0 or "waiting" in state:
            reason = "Init:" + ((state.get("waiting") or state.get("terminated") or {}).get("reason") or "Error")
            break
    else:
        running = False
        for c in reversed(status.get("containerStatuses") or []):
            state = c.get("state") or {}
            if (state.get("waiting") or {}).get("reason"):
                reason = state["waiting"]["reason"]
            elif (state.get("terminated") or {}).get("reason"):
                reason = state["terminated"]["reason"]
            elif "terminated" in state:
                t = state["terminated"]
                reason = f"Signal:{t['signal']}" if t.get("signal") else f"ExitCode:{t.get('exitCode', 0)}"
            elif c.get("ready") and "running" in state:
                running = True
        if reason == "Completed" and running:
            reason = "Running"
    if o["metadata"].get("deletionTimestamp"):
        reason = "Terminating"
    return reason


def _pod(o: Obj, now: float) -> list[Any]:
    status, spec = o.get("status") or {}, o.get("spec") or {}
    statuses = status.get("containerStatuses") or []
    ready = sum(1 for c in statuses if c.get("ready"))
    restarts = sum(int(c.get("restartCount", 0)) for c in statuses)
    last = max((_seconds(((c.get("lastState") or {}).get("terminated") or {}).get("finishedAt")) or 0
                for c in statuses), default=0)
    shown = f"{restarts} ({human_duration(now - last)} ago)" if restarts and last else str(restarts)
    gates = spec.get("readinessGates") or []
    return [f"{ready}/{len(spec.get('containers') or [])}", pod_status(o), shown,
            age(o["metadata"].get("creationTimestamp"), now), status.get("podIP") or "<none>",
            spec.get("nodeName") or "<none>", status.get("nominatedNodeName") or "<none>",
            f"0/{len(gates)}" if gates else "<none>"]


def _ports(spec: Obj) -> str:
    shown = []
    for p in spec.get("ports") or []:
        port = f"{p.get('port')}:{p['nodePort']}" if p.get("nodePort") else str(p.get("port"))
        shown.append(f"{port}/{p.get('protocol', 'TCP')}")
    return ",".join(shown) or "<none>"


def _service(o: Obj, now: float) -> list[Any]:
    spec = o.get("spec") or {}
    external = ",".join(spec.get("externalIPs") or []) or ("<pending>" if spec.get("type") == "LoadBalancer"
                                                            else "<none>")
    selector = ",".join(f"{k}={v}" for k, v in sorted((spec.get("selector") or {}).items())) or "<none>"
    return [spec.get("type", "ClusterIP"), spec.get("clusterIP") or "<none>", external, _ports(spec),
            age(o["metadata"].get("creationTimestamp"), now), selector]


def _event(o: Obj, now: float) -> list[Any]:
    involved = o.get("involvedObject") or {}
    last = o.get("lastTimestamp") or o.get("eventTime") or o["metadata"].get("creationTimestamp")
    first = o.get("firstTimestamp") or o.get("eventTime") or o["metadata"].get("creationTimestamp")
    source = o.get("source") or {}
    return [age(last, now), o.get("type", ""), o.get("reason", ""),
            f"{str(involved.get('kind', '')).lower()}/{involved.get('name', '')}", involved.get("fieldPath", ""),
            ", ".join(v for v in (source.get("component"), source.get("host")) if v) or o.get(
                "reportingComponent", ""),
            (o.get("message") or "").strip(), age(first, now), o.get("count", 1), o["metadata"]["name"]]


def _hpa(o: Obj, now: float) -> list[Any]:
    spec, status = o.get("spec") or {}, o.get("status") or {}
    ref = spec.get("scaleTargetRef") or {}
    targets = []
    for metric in spec.get("metrics") or []:
        target = ((metric.get("resource") or {}).get("target") or {})
        value = target.get("averageUtilization")
        targets.append(f"<unknown>/{value}%" if value is not None else "<unknown>")
    return [f"{ref.get('kind', '')}/{ref.get('name', '')}", ", ".join(targets) or "<none>",
            spec.get("minReplicas", 1), spec.get("maxReplicas", 0), status.get("currentReplicas", 0),
            age(o["metadata"].get("creationTimestamp"), now)]


def _pdb(o: Obj, now: float) -> list[Any]:
    spec, status = o.get("spec") or {}, o.get("status") or {}
    return [spec.get("minAvailable", "N/A"), spec.get("maxUnavailable", "N/A"),
            status.get("disruptionsAllowed", 0), age(o["metadata"].get("creationTimestamp"), now)]


def _created(o: Obj, now: float) -> list[Any]:
    return [o["metadata"].get("creationTimestamp", "")]


def _simple(*cells: Callable[[Obj], Any]) -> Callable[[Obj, float], list[Any]]:
    def row(o: Obj, now: float) -> list[Any]:
        values = [cell(o) for cell in cells]
        values.insert(len(values), age(o["metadata"].get("creationTimestamp"), now))
        return values
    return row


def _ingress(o: Obj, now: float) -> list[Any]:
    spec = o.get("spec") or {}
    hosts = ",".join(r.get("host", "*") for r in spec.get("rules") or []) or "*"
    address = ",".join(i.get("ip") or i.get("hostname", "")
                       for i in ((o.get("status") or {}).get("loadBalancer") or {}).get("ingress") or [])
    return [spec.get("ingressClassName") or "<none>", hosts, address, "443" if spec.get("tls") else "80",
            age(o["metadata"].get("creationTimestamp"), now)]


_S, _I = "string", "integer"
PRINTERS: dict[str, tuple[list[Column], Callable[[Obj, float], list[Any]]]] = {
    "deployments": ([("Ready", _S, 0), ("Up-to-date", _I, 0), ("Available", _I, 0), ("Age", _S, 0),
                     ("Containers", _S, 1), ("Images", _S, 1), ("Selector", _S, 1)], _deployment),
    "replicasets": ([("Desired", _I, 0), ("Current", _I, 0), ("Ready", _I, 0), ("Age", _S, 0),
                     ("Containers", _S, 1), ("Images", _S, 1), ("Selector", _S, 1)], _replicaset),
    "pods": ([("Ready", _S, 0), ("Status", _S, 0), ("Restarts", _S, 0), ("Age", _S, 0), ("IP", _S, 1),
              ("Node", _S, 1), ("Nominated Node", _S, 1), ("Readiness Gates", _S, 1)], _pod),
    "services": ([("Type", _S, 0), ("Cluster-IP", _S, 0), ("External-IP", _S, 0), ("Port(s)", _S, 0),
                  ("Age", _S, 0), ("Selector", _S, 1)], _service),
    "events": ([("Last Seen", _S, 0), ("Type", _S, 0), ("Reason", _S, 0), ("Object", _S, 0),
                ("Subobject", _S, 1), ("Source", _S, 1), ("Message", _S, 0), ("First Seen", _S, 1),
                ("Count", _I, 1), ("Name", _S, 1)], _event),
    "configmaps": ([("Data", _I, 0), ("Age", _S, 0)],
                   _simple(lambda o: len(o.get("data") or {}) + len(o.get("binaryData") or {}))),
    "secrets": ([("Type", _S, 0), ("Data", _I, 0), ("Age", _S, 0)],
                _simple(lambda o: o.get("type", ""), lambda o: len(o.get("data") or {}))),
    "serviceaccounts": ([("Secrets", _I, 0), ("Age", _S, 0)], _simple(lambda o: len(o.get("secrets") or []))),
    "namespaces": ([("Status", _S, 0), ("Age", _S, 0)], _simple(lambda o: (o.get("status") or {}).get("phase", ""))),
    "horizontalpodautoscalers": ([("Reference", _S, 0), ("Targets", _S, 0), ("MinPods", _S, 0),
                                  ("MaxPods", _I, 0), ("Replicas", _I, 0), ("Age", _S, 0)], _hpa),
    "poddisruptionbudgets": ([("Min Available", _S, 0), ("Max Unavailable", _S, 0),
                              ("Allowed Disruptions", _I, 0), ("Age", _S, 0)], _pdb),
    "networkpolicies": ([("Pod-Selector", _S, 0), ("Age", _S, 0)],
                        _simple(lambda o: selector_string((o.get("spec") or {}).get("podSelector") or {})
                                or "<none>")),
    "ingresses": ([("Class", _S, 0), ("Hosts", _S, 0), ("Address", _S, 0), ("Ports", _S, 0), ("Age", _S, 0)],
                  _ingress),
    "roles": ([("Created At", "date", 0)], _created),
    "rolebindings": ([("Role", _S, 0), ("Age", _S, 0)],
                     _simple(lambda o: f"{(o.get('roleRef') or {}).get('kind', '')}/"
                                       f"{(o.get('roleRef') or {}).get('name', '')}")),
    "leases": ([("Holder", _S, 0), ("Age", _S, 0)],
               _simple(lambda o: (o.get("spec") or {}).get("holderIdentity", ""))),
    "limitranges": ([("Created At", "date", 0)], _created),
}
_DEFAULT: tuple[list[Column], Callable[[Obj, float], list[Any]]] = ([("Age", _S, 0)], _simple())


_UNNAMED = {"events"}  # upstream's event printer has no leading NAME column (NAME is last, with -o wide)


def _definitions(plural: str, columns: list[Column]) -> list[dict[str, Any]]:
    defs = [] if plural in _UNNAMED else [{"name": "Name", "type": "string", "format": "name",
                                           "description": "Name must be unique within a namespace.", "priority": 0}]
    defs += [{"name": n, "type": t, "format": "name" if n == "Name" else "", "description": n, "priority": p}
             for n, t, p in columns]
    return defs


def _row_object(o: Obj, include: str) -> Obj | None:
    if include == "None":
        return None
    if include == "Object":
        return o
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": o.get("metadata", {})}


def table(plural: str, items: list[Obj], resource_version: str, include: str = "PartialObjectMetadata",
          now: float | None = None, headers: bool = True) -> Obj:
    """The meta.k8s.io/v1 Table of `items`; events sort by time as kubectl's --sort-by would not."""
    columns, cells = PRINTERS.get(plural, _DEFAULT)
    now = time.time() if now is None else now
    rows = []
    for o in items:
        lead = [] if plural in _UNNAMED else [o["metadata"].get("name", "")]
        row: Obj = {"cells": [*lead, *cells(o, now)]}
        obj = _row_object(o, include)
        if obj is not None:
            row["object"] = obj
        rows.append(row)
    body: Obj = {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {"resourceVersion": resource_version}}
    body["columnDefinitions"] = _definitions(plural, columns) if headers else None
    body["rows"] = rows
    return body


def wanted(accept: str) -> str | None:
    """The Table version asked for (v1 or v1beta1) in an Accept header, else None."""
    for part in accept.split(","):
        params = dict(p.strip().partition("=")[::2] for p in part.split(";")[1:])
        if params.get("as") == "Table" and params.get("g") == "meta.k8s.io":
            return params.get("v", "v1")
    return None
