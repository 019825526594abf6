"""The stand-in CMS service the local cluster's pods run: what a Taly service shows the platform, nothing more.

It serves /health (alive), /ready (its dependencies reachable and the image not a never-ready one),
/metrics (Prometheus text format: the series the alert rules and `taly health`'s SLO queries read;
every route's 5xx count from 0, so the error-rate ratio exists without errors) and a small /api, with
an X-Taly-Version header on every answer, and sends itself a few requests a second while it is ready
(as clients reach it through its Service) so rate() and histogram_quantile() have data. The image's
behaviour shapes it: crash (exit 1 at start), never-ready, an error rate (5xx), a latency.

Dependencies come from the environment as the chart gives it (ConfigMap and Secret, by envFrom):
DATABASE_HOST/DATABASE_PORT (PostgreSQL: an SSLRequest, answered without credentials),
REDIS_HOST/REDIS_PORT/REDIS_PASSWORD (AUTH, then PING), AMQP_ENDPOINT (the AMQP protocol header;
with AMQP_MANAGEMENT_URL, AMQP_USERNAME and AMQP_PASSWORD, RabbitMQ's management HTTP API instead).
With TALY_QUEUE and AMQP credentials it holds a real AMQP 0-9-1 consumer on that work queue (the broker
counts it, as `taly health` checks), reconnecting when it drops, and is not ready while it cannot
consume; the services other than the queue workers (worker, notification) publish a job to them now
and then through the management API. A dependency named but down fails /ready, turns the API's
answers into 503s and shows as taly_dependency_up 0; one down is checked again every half second.

Standard library only, and few modules of it (no http.server, email or argparse): twenty of these run
at once inside the cluster's 400 MB. The kubelet runs it as `python -I -S standin.py`;
`python -m taly_ops.local.standin` works too.
"""

from __future__ import annotations

import binascii
import json
import os
import random
import signal
import socket
import struct
import sys
import threading
import time

BEHAVIOURS = ("healthy", "crash", "never-ready")
CONSUMERS = ("worker", "notification")
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
ROUTES = (("GET", "/api/items"), ("GET", "/api/items/:id"), ("POST", "/api/items"))
CHECK_EVERY = 2.0       # seconds between dependency checks (and queue polls)
RECHECK_EVERY = 0.5     # ... while one is down, and between the consumer's attempts to connect
PUBLISH_EVERY = 10.0    # seconds between the jobs a publishing service sends
TIMEOUT = 1.0           # of one dependency check
SSL_REQUEST = b"\x00\x00\x00\x08\x04\xd2\x16\x2f"   # PostgreSQL SSLRequest: length 8, code 80877103
AMQP_HEADER = b"AMQP\x00\x00\x09\x01"


def log(message: str) -> None:
    sys.stderr.write(time.strftime("%Y-%m-%dT%H:%M:%SZ ", time.gmtime()) + message + "\n")
    sys.stderr.flush()


# --- configuration ------------------------------------------------------------------------------------------------

def parse_args(argv: list[str], env: dict[str, str]) -> dict:
    """`--name value` pairs over the environment's defaults; ValueError names what is wrong."""
    opts = {"service": env.get("TALY_SERVICE", ""), "version": "0.0.0", "behaviour": "healthy", "error-rate": "0",
            "latency-ms": "0", "host": "127.0.0.1", "port": env.get("PORT", "3000"), "traffic": "3"}
    if len(argv) % 2:
        raise ValueError(f"option {argv[-1]} has no value")
    for key, value in zip(argv[::2], argv[1::2]):
        if not key.startswith("--") or key[2:] not in opts:
            raise ValueError(f"unknown option {key} (known: {', '.join('--' + k for k in opts)})")
        opts[key[2:]] = value
    if "PORT" in env:
        opts["port"] = env["PORT"]  # a real service listens where its configuration says
    if not opts["service"]:
        raise ValueError("no service name (--service or TALY_SERVICE)")
    if opts["behaviour"] not in BEHAVIOURS:
        raise ValueError(f"behaviour {opts['behaviour']!r} is not one of {', '.join(BEHAVIOURS)}")
    out = dict(opts, port=int(opts["port"]), traffic=float(opts["traffic"]), latency=float(opts["latency-ms"]) / 1000,
               error_rate=float(opts["error-rate"]))
    if not 0 <= out["error_rate"] <= 1 or out["latency"] < 0 or not 0 < out["port"] < 65536:
        raise ValueError("error-rate must be in 0..1, latency-ms >= 0, port in 1..65535")
    return out


def dependencies(env: dict[str, str]) -> dict[str, tuple]:
    """{dependency: (kind, settings...)} for the dependencies the configuration names."""
    deps: dict[str, tuple] = {}
    if env.get("DATABASE_HOST"):
        deps["database"] = ("postgres", env["DATABASE_HOST"], int(env.get("DATABASE_PORT") or 5432))
    if env.get("REDIS_HOST"):
        deps["cache"] = ("redis", env["REDIS_HOST"], int(env.get("REDIS_PORT") or 6379), env.get("REDIS_PASSWORD", ""))
    if env.get("AMQP_MANAGEMENT_URL"):
        deps["broker"] = ("management", env["AMQP_MANAGEMENT_URL"], env.get("AMQP_USERNAME", "guest"),
                          env.get("AMQP_PASSWORD", "guest"))
    elif env.get("AMQP_ENDPOINT"):
        deps["broker"] = ("amqp", *_amqp_address(env["AMQP_ENDPOINT"]))
    return deps


def _amqp_address(endpoint: str) -> tuple[str, int]:
    host, _, port = endpoint.split("://", 1)[-1].split("/", 1)[0].rpartition("@")[2].partition(":")
    return host, int(port or 5672)


def work_queue(env: dict[str, str]) -> tuple[str, int, str, tuple[str, str]] | None:
    """(host, port, queue, login) of the work queue the service consumes over AMQP, when its configuration names one."""
    if not (env.get("AMQP_ENDPOINT") and env.get("TALY_QUEUE") and env.get("AMQP_USERNAME")):
        return None
    return (*_amqp_address(env["AMQP_ENDPOINT"]), env["TALY_QUEUE"], (env["AMQP_USERNAME"], env.get("AMQP_PASSWORD", "")))


# --- talking to the dependencies -----------------------------------------------------------------------------------

def _exchange(host: str, port: int, payload: bytes, want: int) -> bytes:
    with socket.create_connection((host, port), timeout=TIMEOUT) as s:
        s.sendall(payload)
        data = b""
        while len(data) < want:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        return data


def _resp(*words: str) -> bytes:
    return b"*%d\r\n" % len(words) + b"".join(b"$%d\r\n%s\r\n" % (len(w.encode()), w.encode()) for w in words)


def http(url: str, method: str, path: str, auth: tuple[str, str], body: object = None) -> tuple[int, bytes]:
    """One request (plain http; HTTP/1.0, so the answer is never chunked and ends with the connection)."""
    hostport, _, prefix = url.split("://", 1)[-1].partition("/")
    host, _, port = hostport.partition(":")
    data = b"" if body is None else json.dumps(body).encode()
    token = binascii.b2a_base64(f"{auth[0]}:{auth[1]}".encode(), newline=False).decode()
    head = (f"{method} /{prefix}{path} HTTP/1.0\r\nHost: {hostport}\r\nAuthorization: Basic {token}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n")
    with socket.create_connection((host, int(port or 80)), timeout=TIMEOUT * 3) as s:
        s.sendall(head.encode() + data)
        chunks = []
        while chunk := s.recv(65536):
            chunks.append(chunk)
    header, _, payload = b"".join(chunks).partition(b"\r\n\r\n")
    return int(header.split(b" ", 2)[1]), payload


def check(dep: tuple) -> str:
    """'' when the dependency answers as it should, else why not."""
    kind = dep[0]
    try:
        if kind == "postgres":
            answer = _exchange(dep[1], dep[2], SSL_REQUEST, 1)
            return "" if answer[:1] in (b"S", b"N") else f"unexpected answer {answer[:20]!r} to an SSLRequest"
        if kind == "redis":
            payload = (_resp("AUTH", dep[3]) if dep[3] else b"") + _resp("PING")
            answer = _exchange(dep[1], dep[2], payload, 12 if dep[3] else 7)
            return "" if answer.endswith(b"+PONG\r\n") and b"-" not in answer[:1] else \
                f"PING answered {answer.strip().decode(errors='replace')[:80]!r}"
        if kind == "amqp":
            answer = _exchange(dep[1], dep[2], AMQP_HEADER, 1)
            return "" if answer[:1] == b"\x01" else f"unexpected answer {answer[:8]!r} to the AMQP header"
        status, _ = http(dep[1], "GET", "api/overview", (dep[2], dep[3]))
        return "" if status == 200 else f"management API answered {status}"
    except (OSError, ValueError, IndexError) as exc:
        return f"{type(exc).__name__}: {exc}"


# --- consuming the work queue (AMQP 0-9-1, as the services' broker clients do) ---------------------------------------

def _frame(kind: int, channel: int, payload: bytes) -> bytes:
    return struct.pack(">BHI", kind, channel, len(payload)) + payload + b"\xce"


def _method(channel: int, class_id: int, method_id: int, args: bytes = b"") -> bytes:
    return _frame(1, channel, struct.pack(">HH", class_id, method_id) + args)


def _short(text: str) -> bytes:
    raw = text.encode()
    return struct.pack(">B", len(raw)) + raw


def _read_frame(sock: socket.socket) -> tuple[int, int, bytes]:
    def exactly(n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = sock.recv(n - len(data))
            if not chunk:
                raise OSError("the broker closed the connection")
            data += chunk
        return data

    kind, channel, size = struct.unpack(">BHI", exactly(7))
    payload = exactly(size + 1)
    if payload[-1:] != b"\xce":
        raise ValueError("bad AMQP frame end")
    return kind, channel, payload[:-1]


def _await(sock: socket.socket, class_id: int, method_id: int) -> bytes:
    """The arguments of the next method frame, which must be class_id.method_id (a Close says why not)."""
    while True:
        kind, _, payload = _read_frame(sock)
        if kind != 1:
            continue  # a heartbeat
        got = struct.unpack(">HH", payload[:4])
        if got == (class_id, method_id):
            return payload[4:]
        if got in ((10, 50), (20, 40)):  # connection.close, channel.close: code, then the reply text
            code = struct.unpack(">H", payload[4:6])[0]
            raise ValueError(f"the broker refused: {code} {payload[7:7 + payload[6]].decode(errors='replace')}")
        raise ValueError(f"expected AMQP method {class_id}.{method_id}, got {got[0]}.{got[1]}")


def consume(svc: "Service", host: str, port: int, queue: str, login: tuple[str, str]) -> None:
    """Hold a consumer on the service's work queue (basic.consume, auto-ack), reconnecting when it drops.

    The broker counts it as the queue's consumer (what `taly health` checks); deliveries are counted in
    taly_queue_messages_total{direction="consumed"}; while it is not consuming, /ready is false.
    """
    while True:
        try:
            with socket.create_connection((host, port), timeout=TIMEOUT * 3) as sock:
                sock.sendall(AMQP_HEADER)
                _await(sock, 10, 10)  # connection.start
                sock.sendall(_method(0, 10, 11, struct.pack(">I", 0) + _short("PLAIN")
                                     + struct.pack(">I", len(login[0]) + len(login[1]) + 2)
                                     + f"\0{login[0]}\0{login[1]}".encode() + _short("en_US")))
                channel_max, frame_max, _ = struct.unpack(">HIH", _await(sock, 10, 30)[:8])  # connection.tune
                sock.sendall(_method(0, 10, 31, struct.pack(">HIH", channel_max, frame_max, 0))  # no heartbeats
                             + _method(0, 10, 40, _short("/") + _short("") + b"\x00"))
                _await(sock, 10, 41)  # connection.open-ok
                sock.sendall(_method(1, 20, 10, _short("")))
                _await(sock, 20, 11)  # channel.open-ok
                sock.sendall(_method(1, 60, 20, struct.pack(">H", 0) + _short(queue) + _short(f"{svc.name}-{os.getpid()}")
                                     + b"\x02" + struct.pack(">I", 0)))  # basic.consume, no-ack
                _await(sock, 60, 21)  # basic.consume-ok
                svc.consuming(queue, "")
                sock.settimeout(None)
                while True:
                    kind, channel, payload = _read_frame(sock)
                    if kind == 8:
                        sock.sendall(_frame(8, 0, b""))
                    elif kind == 1 and payload[:4] == struct.pack(">HH", 60, 60):  # basic.deliver
                        with svc.lock:
                            svc.queue["consumed"] += 1
                    elif kind == 1 and payload[:4] in (struct.pack(">HH", 10, 50), struct.pack(">HH", 20, 40)):
                        raise OSError("the broker closed the channel")
        except (OSError, ValueError, struct.error) as exc:
            svc.consuming(queue, f"{type(exc).__name__}: {exc}")
        time.sleep(RECHECK_EVERY)


# --- the service's state and metrics --------------------------------------------------------------------------------

class Service:
    def __init__(self, opts: dict, deps: dict[str, tuple]) -> None:
        self.opts, self.deps = opts, deps
        self.name, self.version = opts["service"], opts["version"]
        self.lock = threading.Lock()
        # Every route's 5xx series exists from the start, at 0: the error-rate ratio has a numerator without errors.
        self.requests: dict[tuple[str, str, str], int] = {(m, r, "500"): 0 for m, r in ROUTES}
        self.hist: dict[tuple[str, str], list] = {}   # (method, route) -> [bucket counts..., sum, count]
        self.down: dict[str, str] = {d: "not checked yet" for d in deps}
        self.queue = {"consumed": 0, "published": 0}
        self.started = time.time()

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        with self.lock:
            key = (method, route, str(status))
            self.requests[key] = self.requests.get(key, 0) + 1
            h = self.hist.setdefault((method, route), [0] * (len(BUCKETS) + 2))
            for i, bound in enumerate(BUCKETS):
                if seconds <= bound:
                    h[i] += 1
            h[-2] += seconds
            h[-1] += 1

    def check_dependencies(self) -> None:
        for dep, spec in self.deps.items():
            why = check(spec)
            if why != self.down.get(dep, ""):
                log(f"dependency {dep} " + (f"down: {why}" if why else "up"))
            with self.lock:
                if why:
                    self.down[dep] = why
                else:
                    self.down.pop(dep, None)

    def consuming(self, queue: str, why: str) -> None:
        """The work-queue consumer's state: '' when it consumes, else why not (then /ready is false)."""
        now = f"not consuming {queue}: {why}" if why else ""
        with self.lock:
            was = self.down.pop("queue", "")
            if now:
                self.down["queue"] = now
        if now != was:
            log(now or f"consuming {queue}")

    def ready(self) -> tuple[bool, str]:
        if self.opts["behaviour"] == "never-ready":
            return False, '{"ready": false, "reason": "this image never becomes ready"}'
        with self.lock:
            down = dict(self.down)
        if down:
            return False, json.dumps({"ready": False, "down": down})
        return True, json.dumps({"ready": True, "dependencies": sorted(self.deps)})

    def metrics(self) -> str:
        s, v = self.name, self.version
        with self.lock:
            requests, hist, down = dict(self.requests), {k: list(h) for k, h in self.hist.items()}, set(self.down)
            queue = dict(self.queue)
        out = _family("http_requests_total", "counter", "HTTP requests answered, by method, route and status.")
        out += [f'http_requests_total{{service="{s}",version="{v}",method="{m}",route="{r}",status="{code}"}} {n}'
                for (m, r, code), n in sorted(requests.items())]
        out += _family("http_request_duration_seconds", "histogram", "Time to answer an HTTP request.")
        for (method, route), h in sorted(hist.items()):
            labels = f'service="{s}",version="{v}",method="{method}",route="{route}"'
            out += [f'http_request_duration_seconds_bucket{{{labels},le="{b}"}} {n}' for b, n in zip(BUCKETS, h)]
            out += [f'http_request_duration_seconds_bucket{{{labels},le="+Inf"}} {h[-1]}',
                    f"http_request_duration_seconds_sum{{{labels}}} {h[-2]:.6f}",
                    f"http_request_duration_seconds_count{{{labels}}} {h[-1]}"]
        out += _family("taly_build_info", "gauge", "The running service and its version.")
        out.append(f'taly_build_info{{service="{s}",version="{v}"}} 1')
        out += _family("taly_dependency_up", "gauge", "Whether a dependency the configuration names answers.")
        out += [f'taly_dependency_up{{service="{s}",dependency="{d}"}} {0 if d in down else 1}' for d in sorted(self.deps)]
        if "broker" in self.deps:
            out += _family("taly_queue_messages_total", "counter", "Messages consumed from or published to the broker.")
            out += [f'taly_queue_messages_total{{service="{s}",direction="{k}"}} {n}' for k, n in sorted(queue.items())]
        out += _family("process_start_time_seconds", "gauge", "Start time of the process since the Unix epoch.")
        out.append(f"process_start_time_seconds {self.started:.3f}")
        return "\n".join(out) + "\n"


def _family(name: str, kind: str, text: str) -> list[str]:
    return [f"# HELP {name} {text}", f"# TYPE {name} {kind}"]


# --- serving ---------------------------------------------------------------------------------------------------------

def route_of(method: str, path: str) -> str | None:
    path = path.split("?", 1)[0].rstrip("/")
    if path == "/api/items" and method in ("GET", "POST"):
        return path
    if method == "GET" and path.startswith("/api/items/") and path.count("/") == 3:
        return "/api/items/:id"
    return None


def answer(svc: Service, method: str, path: str) -> tuple[int, str, str]:
    """(status, content type, body) of one request, recording the API's requests in the metrics."""
    path = path.split("?", 1)[0]
    if path == "/health":
        return 200, "application/json", '{"status": "ok"}'
    if path == "/ready":
        ok, body = svc.ready()
        return (200 if ok else 503), "application/json", body
    if path == "/metrics":
        return 200, "text/plain; version=0.0.4; charset=utf-8", svc.metrics()
    route = route_of(method, path)
    if route is None:
        return 404, "application/json", '{"error": "not found"}'
    t0 = time.monotonic()
    opts = svc.opts
    time.sleep(random.uniform(0.002, 0.02) + opts["latency"] * random.uniform(0.5, 1.5))  # the work it stands for
    with svc.lock:
        down = sorted(svc.down)
    if down:
        status, body = 503, json.dumps({"error": f"{', '.join(down)} unavailable"})
    elif random.random() < opts["error_rate"]:
        status, body = 500, '{"error": "internal error"}'
    else:
        status, body = (201 if method == "POST" else 200), '{"ok": true}'
    svc.observe(method, route, status, time.monotonic() - t0)
    return status, "application/json", body


def serve_connection(svc: Service, conn: socket.socket) -> None:
    """HTTP/1.1 with keep-alive: Prometheus and the synthetic traffic reuse their connections."""
    conn.settimeout(60)
    buf = b""
    try:
        while True:
            while b"\r\n\r\n" not in buf:
                chunk = conn.recv(65536)
                if not chunk or len(buf) > 65536:
                    return
                buf += chunk
            head, _, buf = buf.partition(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, path, proto = (lines[0].split(" ") + ["", ""])[:3]
            headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
            length = int(headers.get("content-length") or 0)
            while len(buf) < length:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                buf += chunk
            buf = buf[length:]
            status, ctype, body = answer(svc, method, path)
            close = headers.get("connection", "").lower() == "close" or proto != "HTTP/1.1"
            data = body.encode()
            conn.sendall((f"HTTP/1.1 {status} {REASONS.get(status, 'Unknown')}\r\nContent-Type: {ctype}\r\n"
                          f"Content-Length: {len(data)}\r\nX-Taly-Service: {svc.name}\r\n"
                          f"X-Taly-Version: {svc.version}\r\n" + ("Connection: close\r\n" if close else "") +
                          "\r\n").encode() + data)
            if close:
                return
    except (OSError, ValueError):
        return
    finally:
        conn.close()


REASONS = {200: "OK", 201: "Created", 404: "Not Found", 500: "Internal Server Error", 503: "Service Unavailable"}


# --- background work -------------------------------------------------------------------------------------------------

def traffic(svc: Service, host: str, port: int, per_second: float) -> None:
    """A few API requests a second to ourselves, over one kept-alive connection."""
    conn = None
    while True:
        time.sleep(random.expovariate(per_second))
        if not svc.ready()[0]:
            continue  # clients reach a pod through its Service: only while it is ready
        method, route = random.choice(ROUTES)
        path = route.replace(":id", str(random.randint(1, 500)))
        try:
            if conn is None:
                conn = socket.create_connection((host, port), timeout=15)
            conn.sendall(f"{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\n\r\n".encode())
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(4096)
                if not chunk:
                    raise OSError("connection closed")
                data += chunk
            head, _, body = data.partition(b"\r\n\r\n")
            length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
            while len(body) < length:
                body += conn.recv(4096)
        except (OSError, ValueError, IndexError):
            if conn is not None:
                conn.close()
            conn = None


def background(svc: Service) -> None:
    """Dependency checks every CHECK_EVERY s; the consumers' queue polls and the publishers' jobs."""
    broker = svc.deps.get("broker")
    managed = broker is not None and broker[0] == "management"
    queue = f"taly.{svc.name}"
    last_publish = 0.0
    while True:
        with svc.lock:
            waiting = bool(svc.down)
        time.sleep(RECHECK_EVERY if waiting else CHECK_EVERY)  # a pod waiting for a dependency is ready soon after it
        svc.check_dependencies()
        if not managed or "broker" in svc.down:
            continue
        try:
            if svc.name not in CONSUMERS and time.monotonic() - last_publish >= PUBLISH_EVERY:
                last_publish = time.monotonic()
                target = CONSUMERS[random.randrange(len(CONSUMERS))]
                status, _ = http(broker[1], "POST", "api/exchanges/%2F/taly.events/publish", broker[2:],
                                 {"properties": {}, "routing_key": f"{target}.{svc.name}", "payload_encoding": "string",
                                  "payload": json.dumps({"from": svc.name, "at": time.time()})})
                if status == 200:
                    with svc.lock:
                        svc.queue["published"] += 1
        except (OSError, ValueError, IndexError) as exc:
            log(f"broker: {exc}")


def main(argv: list[str] | None = None) -> int:
    env = dict(os.environ)
    try:
        opts = parse_args(sys.argv[1:] if argv is None else argv, env)
        deps = dependencies(env)
    except ValueError as exc:
        sys.stderr.write(f"standin: {exc}\n")
        return 2
    if opts["behaviour"] == "crash":
        log(f"{opts['service']} {opts['version']}: this image crashes at start")
        return 1
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    threading.stack_size(256 * 1024)
    svc = Service(opts, deps)
    svc.check_dependencies()
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind((opts["host"], opts["port"]))
    except OSError as exc:
        log(f"cannot listen on {opts['host']}:{opts['port']}: {exc}")
        return 1
    listener.listen(64)
    log(f"{svc.name} {svc.version} ({opts['behaviour']}) listening on {opts['host']}:{opts['port']}; "
        f"dependencies: {', '.join(sorted(deps)) or 'none'}")
    threading.Thread(target=background, args=(svc,), daemon=True).start()
    queue = work_queue(env)
    if queue:
        svc.consuming(queue[2], "not connected yet")
        threading.Thread(target=consume, args=(svc, *queue), daemon=True).start()
    if opts["traffic"] > 0:
        threading.Thread(target=traffic, args=(svc, opts["host"], opts["port"], opts["traffic"]), daemon=True).start()
    try:
        while True:
            conn, _ = listener.accept()
            threading.Thread(target=serve_connection, args=(svc, conn), daemon=True).start()
    finally:
        log(f"{svc.name} {svc.version} stopping")
        listener.close()


if __name__ == "__main__":
    sys.exit(main())
