"""The local cluster's process: `python -m taly_ops.local.cluster --dir D --port P --token-file F --images I
[--tls-cert C --tls-key K] [--metrics-port M]`.

One process, one in-memory Store shared by the API server (threads), the controllers (threads) and
the kubelet (threads; the pods are its child processes, in this process's group, so stopping the group
leaves nothing). `--metrics-port` serves the objects as kube-state-metrics' series and Prometheus's pod discovery. It imports only the
standard library, PyYAML and small pure libraries: never the kubernetes client (the whole cluster,
pods included, stays small).

SIGTERM or SIGINT: the kubelet stops the pods (SIGTERM, then SIGKILL after their grace period), then
the process exits 0. Once every part runs it writes `<dir>/ready` (JSON: pid, port, url) and logs
"cluster ready on http://127.0.0.1:P"; bad arguments are one line on stderr and exit 2.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

HOST = "127.0.0.1"
READY_FILE = "ready"


def _log(line: str) -> None:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
    print(f"{stamp} {line}", file=sys.stderr, flush=True)


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m taly_ops.local.cluster", description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, required=True, help="the cluster's directory (pod logs, ready file)")
    parser.add_argument("--port", type=int, required=True, help="the API server's port on 127.0.0.1")
    parser.add_argument("--token-file", type=Path, required=True, help="the bearer token clients must send")
    parser.add_argument("--images", type=Path, required=True, help="the local image registry (JSON)")
    parser.add_argument("--tls-cert", type=Path, help="serve HTTPS with this certificate (kubectl sends tokens only"
                        " over TLS)")
    parser.add_argument("--tls-key", type=Path, help="the certificate's key")
    parser.add_argument("--metrics-port", type=int, help="serve kube-state-metrics' series and pod discovery here")
    args = parser.parse_args(argv)
    problems = []
    for name, port in (("--port", args.port), ("--metrics-port", args.metrics_port)):
        if port is not None and not 1 <= port <= 65535:
            problems.append(f"{name} {port} is not a TCP port")
    if not args.dir.is_dir():
        problems.append(f"--dir {args.dir} is not a directory")
    try:
        args.token = args.token_file.read_text().strip()
    except OSError as exc:
        problems.append(f"--token-file {args.token_file}: {exc.strerror or exc}")
    else:
        if not args.token:
            problems.append(f"--token-file {args.token_file} is empty")
    if (args.tls_cert is None) != (args.tls_key is None):
        problems.append("--tls-cert and --tls-key go together")
    for name, path in (("--tls-cert", args.tls_cert), ("--tls-key", args.tls_key)):
        if path is not None and not path.is_file():
            problems.append(f"{name} {path} is not a file")
    if problems:
        parser.exit(2, f"error: {problems[0]}\n")
    return args


class Cluster:
    """The parts over one store: the API server first (clients may start writing while the rest boots: the
    controllers resync and the kubelet lists what is there when they start), then the kubelet, the
    controllers and the metrics; stopped in reverse, the pods last."""

    def __init__(self, args: argparse.Namespace) -> None:
        from .server import ApiServer
        from .store import Store

        self.args = args
        self.store = Store()
        tls = (args.tls_cert, args.tls_key) if args.tls_cert else None
        self.server = ApiServer(self.store, args.token, HOST, args.port, logs=self._log_file, tls=tls)
        self.kubelet: Any = None
        self.controllers: Any = None
        self.metrics: Any = None

    def _log_file(self, namespace: str, pod: str, container: str) -> Path | None:
        from .lifecycle import log_path

        path = log_path(self.args.dir, namespace, pod, container)
        return path if path.exists() else None

    def start(self) -> None:
        self.server.start()
        from .controllers import Controllers
        from .images import ImageRegistry
        from .kubelet import Kubelet

        self.kubelet = Kubelet(self.store, ImageRegistry(self.args.images), self.args.dir).start()
        self.controllers = Controllers(self.store).start()
        if self.args.metrics_port:
            from .statemetrics import MetricsServer

            self.metrics = MetricsServer(HOST, self.args.metrics_port, lambda plural: self.store.list(plural)[0],
                                         self.args.token).start()

    def stop(self) -> None:
        """The API server first (no new work), then the controllers, then the pods."""
        for part in (self.metrics, self.server, self.controllers, self.kubelet):
            if part is not None:
                try:
                    part.stop()
                except Exception as exc:  # noqa: BLE001 - keep stopping the rest
                    _log(f"stopping {type(part).__name__}: {type(exc).__name__}: {exc}")


def main(argv: list[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    try:
        cluster = Cluster(args)
        cluster.start()
    except OSError as exc:
        _log(f"error: cannot start the cluster: {exc.strerror or exc}")
        return 1
    url = f"{'https' if args.tls_cert else 'http'}://{HOST}:{args.port}"
    ready = args.dir / READY_FILE
    ready.write_text(json.dumps({"pid": os.getpid(), "port": args.port, "url": url}) + "\n")
    _log(f"cluster ready on {url} (pid {os.getpid()})")
    while not stop.wait(1.0):
        pass
    _log("stopping: the pods first")
    cluster.stop()
    try:
        ready.unlink()
    except FileNotFoundError:
        pass
    _log("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
