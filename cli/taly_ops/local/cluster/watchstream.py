"""The two streaming answers of the API server: watches (chunked JSON lines) and pods/log (text, followed).

A watch is one JSON object per line and chunk: `{"type": ADDED|MODIFIED|DELETED|BOOKMARK|ERROR,
"object": ...}`. It ends after `timeoutSeconds` (default 30 minutes, as upstream's minimum request
timeout), when the client goes away or when the server stops. A resourceVersion older than the
store's history is answered as upstream's watch cache does: HTTP 200 and one ERROR event carrying
the 410 Expired Status. `sendInitialEvents=true` (client-go's WatchList) sends the current objects,
then a BOOKMARK annotated `k8s.io/initial-events-end`.
"""

from __future__ import annotations

import json
import time
from typing import Any

from . import apierrors, tables
from .api import Target
from .apierrors import ApiError
from .watches import Watch

Handler = Any  # server._Handler: the request being answered (duck-typed, so that this module needs no server)
_FOREVER = 1800.0


def _flag(query: dict[str, str], name: str) -> bool:
    return query.get(name, "").lower() in ("true", "1")


def _seconds(query: dict[str, str], name: str, default: float) -> float:
    value = query.get(name)
    if value in (None, ""):
        return default
    try:
        return max(0.0, float(int(value)))
    except ValueError:
        raise apierrors.bad_request(f'Invalid value: "{value}": {name} must be an integer') from None


def _line(kind: str, obj: Any) -> bytes:
    return json.dumps({"type": kind, "object": obj}, separators=(",", ":")).encode() + b"\n"


def stream(h: Handler, t: Target) -> None:
    query, app = h.query, h.app
    timeout = _seconds(query, "timeoutSeconds", _FOREVER)
    bookmarks = _flag(query, "allowWatchBookmarks")
    initial = _flag(query, "sendInitialEvents")
    table = tables.wanted(h.headers.get("Accept", ""))
    start_rv = None if initial else query.get("resourceVersion")
    try:
        watch = app.store.watch(t.resource.plural, t.namespace, start_rv, query.get("labelSelector", ""),
                                query.get("fieldSelector", ""))
    except ApiError as exc:
        if exc.code != 410:
            raise
        h._start_chunks("application/json")
        h._chunk(_line("ERROR", exc.status()))
        h._end_chunks()
        return
    h._start_chunks("application/json")
    try:
        _pump(h, t, watch, timeout, bookmarks, initial, table)
    except (BrokenPipeError, ConnectionResetError):
        h.close_connection = True
        return
    finally:
        watch.close()
    try:
        h._end_chunks()
    except OSError:
        h.close_connection = True


def _bookmark(t: Target, rv: str, initial_end: bool = False) -> dict[str, Any]:
    meta: dict[str, Any] = {"resourceVersion": rv}
    if initial_end:
        meta["annotations"] = {"k8s.io/initial-events-end": "true"}
    return {"kind": t.resource.kind, "apiVersion": t.resource.api_version, "metadata": meta}


def _pump(h: Handler, t: Target, watch: Watch, timeout: float, bookmarks: bool, initial: bool,
          table: str | None) -> None:
    app = h.app
    deadline = time.monotonic() + timeout
    last_bookmark = time.monotonic()
    initial_left = watch.initial if initial else -1
    headers = True
    if initial_left == 0:
        h._chunk(_line("BOOKMARK", _bookmark(t, watch.start_resource_version, True)))
    while not app.stopping.is_set():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            rv = watch.quiet_version()
            if bookmarks and rv:
                h._chunk(_line("BOOKMARK", _bookmark(t, rv)))
            return
        event = watch.next_event(min(remaining, 1.0))
        if event is None:
            if h._client_gone():
                return
            rv = watch.quiet_version()
            if bookmarks and rv and time.monotonic() - last_bookmark >= app.bookmark_seconds:
                h._chunk(_line("BOOKMARK", _bookmark(t, rv)))
                last_bookmark = time.monotonic()
            continue
        kind, obj = event
        if table:
            body = tables.table(t.resource.plural, [obj], obj["metadata"].get("resourceVersion", ""),
                                h.query.get("includeObject", "PartialObjectMetadata"), headers=headers)
            body["apiVersion"] = f"meta.k8s.io/{table}"
            headers = False
            obj = body
        h._chunk(_line(kind, obj))
        if initial_left > 0:
            initial_left -= 1
            if initial_left == 0:
                h._chunk(_line("BOOKMARK", _bookmark(t, watch.start_resource_version, True)))


def pod_log(h: Handler, t: Target) -> None:
    """GET pods/<name>/log: the container's log file as the kubelet wrote it; follow=true streams it."""
    app, query = h.app, h.query
    pod = app.store.get("pods", t.namespace, t.name or "")
    names = [c.get("name") for c in (pod.get("spec") or {}).get("containers") or []]
    container = query.get("container") or (names[0] if len(names) == 1 else "")
    if not container:
        raise apierrors.bad_request(f"a container name must be specified for pod {t.name}, choose one of: "
                                    f"[{' '.join(names)}]")
    if container not in names:
        raise apierrors.bad_request(f"container {container} is not valid for pod {t.name}")
    path = app.logs(t.namespace or "", t.name or "", container) if app.logs else None
    if path is None or not path.exists():
        raise apierrors.bad_request(f'container "{container}" in pod "{t.name}" is waiting to start: '
                                    "ContainerCreating")
    data = path.read_bytes()
    tail = query.get("tailLines")
    if tail not in (None, ""):
        try:
            keep = max(0, int(tail))
        except ValueError:
            raise apierrors.bad_request(f'Invalid value: "{tail}": tailLines must be an integer') from None
        lines = data.splitlines(keepends=True)
        data = b"".join(lines[-keep:]) if keep else b""
    if not _flag(query, "follow"):
        return h._send_bytes(200, data, "text/plain")
    h._start_chunks("text/plain")
    offset = path.stat().st_size
    try:
        if data:
            h._chunk(data)
        while not app.stopping.is_set() and not h._client_gone():
            time.sleep(0.25)
            size = path.stat().st_size if path.exists() else 0
            if size > offset:
                with path.open("rb") as f:
                    f.seek(offset)
                    more = f.read(size - offset)
                offset = size
                h._chunk(more)
            try:
                app.store.get("pods", t.namespace, t.name or "")
            except ApiError:
                break
        h._end_chunks()
    except OSError:
        h.close_connection = True
