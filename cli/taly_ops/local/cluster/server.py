"""The local cluster's API server: real HTTP on loopback, JSON, a bearer token, as kube-apiserver answers.

Serves discovery (/version, /api, /apis, group and resource lists; aggregated discovery is answered
in the legacy format, which clients accept), /openapi/v3 (see discovery.py), namespaced and
cluster-scoped CRUD with list/deletecollection, the status and scale subresources, pods/log (from the
kubelet's log files), PATCH in the three formats (415 otherwise), watches (chunked JSON lines,
BOOKMARKs when asked, `timeoutSeconds`, `sendInitialEvents`, 410 as an in-stream ERROR event), and
`as=Table` for kubectl get. Any other path is a 404 Status, any other method a 405: never a silent
success. No request can take it down: every failure is a Status (500 for our own bugs).

Not modelled: server-side apply (`application/apply-patch+yaml` is a 415), protobuf request bodies
(a 415: `kubectl create namespace|configmap|secret|deployment...`, `kubectl run` and `expose` send
them; `kubectl create -f` and `apply` send JSON), aggregated discovery's own format, /openapi/v2
and OpenAPI schemas (`kubectl explain`), admission beyond NamespaceLifecycle, authorization (one token
is all-powerful), namespaces' Terminating phase (a namespace and its objects go at once), foreground
cascading deletion (done as background), dry-run deletions, consistent list snapshots across
`continue`, events.k8s.io/v1, nodes, scheduling, exec/attach/port-forward, CRDs.
"""

from __future__ import annotations

import hmac
import json
import logging
import select
import socket
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable
from urllib.parse import parse_qsl, unquote, urlsplit

from taly_platform.safe_yaml import YamlError, loads

from . import apierrors, discovery, resources, tables, watchstream
from .api import Api, Target
from .apierrors import ApiError
from .patch import ACCEPTED as PATCH_TYPES
from .store import Store

log = logging.getLogger(__name__)
MAX_BODY = 3 * 1024 * 1024
LogFinder = Callable[[str, str, str], "Path | None"]  # (namespace, pod, container) -> the container's log file
_HEALTH = {"/healthz", "/livez", "/readyz"}


class ApiServer:
    """`ApiServer(store, token).start()`; `.url`, `.port`; `.stop()` ends every open watch too."""

    def __init__(self, store: Store, token: str, host: str = "127.0.0.1", port: int = 0,
                 logs: LogFinder | None = None, bookmark_seconds: float = 60.0,
                 tls: tuple[Path, Path] | None = None) -> None:
        """tls: (certificate, key) PEM files. kubectl sends a bearer token only over TLS (kubectl#744)."""
        self.store = store
        self.api = Api(store)
        self.token = token
        self.logs = logs
        self.bookmark_seconds = bookmark_seconds
        self.stopping = threading.Event()
        self.httpd = _HttpServer((host, port), _Handler)
        self.httpd.app = self
        if tls:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(str(tls[0]), str(tls[1]))
            self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True,
                                                    do_handshake_on_connect=False)
        self.port = self.httpd.server_address[1]
        self.url = f"{'https' if tls else 'http'}://{host}:{self.port}"
        self._thread: threading.Thread | None = None

    def start(self) -> "ApiServer":
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="kube-apiserver", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self.httpd.serve_forever(poll_interval=0.2)

    def stop(self) -> None:
        self.stopping.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        if self._thread:
            self._thread.join(5)


class _ItemCache:
    """Each stored object's JSON as a list item (no apiVersion/kind), made once per version of it.

    Stored objects are never changed in place (each write stores a new one), so the stored object
    itself tells whether an entry is current. One entry per uid; at `limit` entries (deleted objects'
    too) the cache starts again.
    """

    def __init__(self, limit: int = 10000) -> None:
        self._entries: dict[str, tuple[dict[str, Any], bytes]] = {}
        self._lock = threading.Lock()
        self._limit = limit

    def encode(self, obj: dict[str, Any]) -> bytes:
        uid = obj["metadata"].get("uid", "")
        entry = self._entries.get(uid)
        if entry is not None and entry[0] is obj:
            return entry[1]
        raw = json.dumps({k: v for k, v in obj.items() if k not in ("apiVersion", "kind")},
                         separators=(",", ":")).encode()
        with self._lock:
            if len(self._entries) >= self._limit:
                self._entries.clear()
            self._entries[uid] = (obj, raw)
        return raw


_ITEMS = _ItemCache()


class _HttpServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128
    app: ApiServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("connection from %s failed", client_address, exc_info=True)  # TLS handshakes, resets


def _acceptable(accept: str) -> bool:
    if not accept.strip():
        return True
    return any(p.split(";")[0].strip() in ("application/json", "*/*", "application/*") for p in accept.split(","))


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _HttpServer
    server_version = "taly-local-kube-apiserver"
    disable_nagle_algorithm = True  # headers and body are separate writes: no 40 ms delayed-ACK stall per answer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's name
        log.debug("%s " + format, self.address_string(), *args)

    # every method goes through one dispatcher
    def do_GET(self) -> None:  # noqa: N802
        self._dispatch()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = do_GET  # noqa: N815

    @property
    def app(self) -> ApiServer:
        return self.server.app

    def _dispatch(self) -> None:
        self._warnings: list[str] = []
        try:
            body = self._read_body()
            url = urlsplit(self.path)
            self.query = dict(parse_qsl(url.query, keep_blank_values=True))
            path = "/" + "/".join(unquote(p) for p in url.path.split("/") if p)
            if path in _HEALTH and self.command == "GET":
                return self._send_bytes(200, b"ok", "text/plain; charset=utf-8")
            if not self._authorized():
                raise apierrors.unauthorized()
            if not _acceptable(self.headers.get("Accept", "")):
                raise apierrors.not_acceptable(["application/json", "application/json;as=Table;v=v1;g=meta.k8s.io"])
            self._route(path, body)
        except ApiError as exc:
            self._send_json(exc.code, exc.status())
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception as exc:  # noqa: BLE001 - the server never dies on a request
            log.exception("request %s %s failed", self.command, self.path)
            error = apierrors.internal(f"{type(exc).__name__}: {exc}")
            try:
                self._send_json(500, error.status())
            except OSError:
                self.close_connection = True

    def _authorized(self) -> bool:
        given = self.headers.get("Authorization", "")
        return hmac.compare_digest(given.encode(), f"Bearer {self.app.token}".encode())

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            self.close_connection = True
            raise apierrors.bad_request("chunked request bodies are not supported by the local cluster")
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            self.close_connection = True
            raise apierrors.bad_request("invalid Content-Length") from None
        if length > MAX_BODY:
            self.close_connection = True
            raise ApiError(413, "RequestEntityTooLarge", f"Request entity too large: limit is {MAX_BODY}")
        return self.rfile.read(length) if length > 0 else b""

    def _parse(self, raw: bytes, what: str) -> tuple[Any, list[str]]:
        """The request body (JSON, or YAML when it says so) and any keys given twice in one object."""
        duplicates: list[str] = []
        content_type = self.headers.get("Content-Type", "application/json").split(";")[0].strip()
        if not raw.strip():
            return None, duplicates
        if content_type == "application/yaml":
            try:
                return loads(raw.decode("utf-8", errors="replace"), "body"), duplicates
            except YamlError as exc:
                raise apierrors.bad_request(f"{what}: yaml: {exc}") from None
        if content_type == "application/vnd.kubernetes.protobuf":
            raise apierrors.unsupported_media_type(content_type, ["application/json", "application/yaml"])

        def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
            seen: dict[str, Any] = {}
            for key, value in items:
                if key in seen:
                    duplicates.append(key)
                seen[key] = value
            return seen

        try:
            return json.loads(raw, object_pairs_hook=pairs), duplicates
        except (ValueError, RecursionError) as exc:
            raise apierrors.bad_request(f"{what}: json parse error: {exc}") from None

    # ---- routing ----

    def _route(self, path: str, raw: bytes) -> None:
        method = self.command
        doc = self._discovery(path) if method == "GET" else None
        if doc is not None:
            return self._send_json(200, doc) if isinstance(doc, dict) else self._send_bytes(200, doc)
        target = self._target(path)
        if target is None:
            if method != "GET" and self._discovery(path) is not None:
                raise apierrors.method_not_allowed()
            raise apierrors.route_not_found()
        if target.subresource == "log":
            if method != "GET":
                raise apierrors.method_not_allowed()
            return self._pod_log(target)
        if method == "GET":
            return self._get(target)
        if method == "POST":
            body, duplicates = self._parse(raw, "couldn't get version/kind")
            code, obj, warnings = self.app.api.create(target, body, self.query, duplicates)
        elif method == "PUT" and target.name:
            body, duplicates = self._parse(raw, "couldn't get version/kind")
            code, obj, warnings = self.app.api.update(target, body, self.query, duplicates)
        elif method == "PATCH" and target.name:
            content_type = self.headers.get("Content-Type", "").split(";")[0].strip()
            if content_type not in ("application/json-patch+json", "application/merge-patch+json",
                                    "application/strategic-merge-patch+json"):
                raise apierrors.unsupported_media_type(content_type, PATCH_TYPES)
            body, _ = self._parse(raw, "error decoding patch")
            code, obj, warnings = self.app.api.patch(target, content_type, body, self.query)
        elif method == "DELETE" and target.name:
            body, _ = self._parse(raw, "error decoding DeleteOptions")
            code, obj, warnings = self.app.api.delete(target, body, self.query)
        elif method == "DELETE":
            body, _ = self._parse(raw, "error decoding DeleteOptions")
            code, obj, warnings = self.app.api.delete_collection(target, body, self.query)
        else:
            raise apierrors.method_not_allowed()
        self._warnings = warnings
        self._send_object(code, target, obj)

    def _discovery(self, path: str) -> Any:
        if path == "/version":
            return discovery.VERSION
        if path == "/api":
            return discovery.api_versions(f"127.0.0.1:{self.app.port}")
        if path == "/apis":
            return discovery.api_groups()
        if path == "/openapi/v3":
            return discovery.openapi_index()
        if path.startswith("/openapi/v3/"):
            return discovery.openapi_document(path[len("/openapi/v3/"):])
        parts = path.strip("/").split("/")
        if parts[0] == "api" and len(parts) == 2:
            return discovery.resource_list("", parts[1])
        if parts[0] == "apis" and len(parts) == 2:
            return discovery.api_group(parts[1])
        if parts[0] == "apis" and len(parts) == 3:
            return discovery.resource_list(parts[1], parts[2])
        return None

    @staticmethod
    def _target(path: str) -> Target | None:
        parts = path.strip("/").split("/")
        if parts[0] == "api" and len(parts) >= 3:
            group, version, rest = "", parts[1], parts[2:]
        elif parts[0] == "apis" and len(parts) >= 4:
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            return None
        namespace = None
        if rest[0] == "namespaces" and len(rest) >= 3 and resources.lookup(group, version, rest[2]):
            namespace, rest = rest[1], rest[2:]
        resource = resources.lookup(group, version, rest[0])
        if resource is None or len(rest) > 3:
            return None
        if namespace is not None and not resource.namespaced:
            return None
        name = rest[1] if len(rest) > 1 else None
        sub = rest[2] if len(rest) > 2 else None
        if sub and not ((sub == "status" and resource.status) or (sub == "scale" and resource.scale)
                        or (sub == "log" and resource.plural == "pods")):
            return None
        if resource.namespaced and name and namespace is None:
            return None  # a namespaced object is only addressed within its namespace
        return Target(resource, namespace, name, sub)

    # ---- reads ----

    def _get(self, t: Target) -> None:
        if t.name:
            if _flag(self.query, "watch"):
                raise apierrors.method_not_allowed()
            return self._send_object(200, t, self.app.api.get(t))
        if _flag(self.query, "watch"):
            return self._watch(t)
        items, meta = self.app.api.list(t, self.query)
        table = tables.wanted(self.headers.get("Accept", ""))
        if table:
            body = tables.table(t.resource.plural, items, meta["resourceVersion"],
                                self.query.get("includeObject", "PartialObjectMetadata"))
            body["apiVersion"] = f"meta.k8s.io/{table}"
            body["metadata"] = meta
            return self._send_json(200, body)
        head = json.dumps({"kind": t.resource.list_kind, "apiVersion": t.resource.api_version, "metadata": meta},
                          separators=(",", ":")).encode()
        body = b"".join((head[:-1], b',"items":[', b",".join(_ITEMS.encode(o) for o in items), b"]}"))
        self._send_bytes(200, body)

    def _send_object(self, code: int, t: Target, obj: dict[str, Any]) -> None:
        table = tables.wanted(self.headers.get("Accept", ""))
        if table and obj.get("kind") == t.resource.kind:
            body = tables.table(t.resource.plural, [obj], obj["metadata"].get("resourceVersion", ""),
                                self.query.get("includeObject", "PartialObjectMetadata"))
            body["apiVersion"] = f"meta.k8s.io/{table}"
            return self._send_json(code, body)
        self._send_json(code, obj)

    # ---- responses ----

    def _send_json(self, code: int, body: Any) -> None:
        self._send_bytes(code, json.dumps(body, separators=(",", ":")).encode(), "application/json")

    def _send_bytes(self, code: int, raw: bytes, content_type: str = "application/json") -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(raw)))
        self.send_header("Cache-Control", "no-cache, private")
        for warning in getattr(self, "_warnings", []):
            self.send_header("Warning", '299 - "' + warning.replace("\\", "\\\\").replace('"', '\\"') + '"')
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(raw)

    def _start_chunks(self, content_type: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Cache-Control", "no-cache, private")
        self.end_headers()

    def _chunk(self, raw: bytes) -> None:
        self.wfile.write(f"{len(raw):x}\r\n".encode() + raw + b"\r\n")
        self.wfile.flush()

    def _end_chunks(self) -> None:
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _client_gone(self) -> bool:
        """True once the client has closed its side (a watch with nothing to send cannot tell otherwise)."""
        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
            if not readable:
                return False
            if isinstance(self.connection, ssl.SSLSocket):
                return True  # a watching client sends nothing: readable means closed (or a TLS alert)
            return self.connection.recv(1, socket.MSG_PEEK) == b""
        except (OSError, ValueError):
            return True

    # ---- watch ----

    def _watch(self, t: Target) -> None:
        watchstream.stream(self, t)

    def _pod_log(self, t: Target) -> None:
        watchstream.pod_log(self, t)


def _flag(query: dict[str, str], name: str) -> bool:
    return query.get(name, "").lower() in ("true", "1")
