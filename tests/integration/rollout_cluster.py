"""An in-process local cluster for rollout fidelity tests: the real store, API server and controllers,
pods kept by the stub kubelet (no processes), a clock the test can move forward (progress deadlines).

`RolloutCluster(tmp).start()` serves HTTPS on a free port with a bearer token (kubectl sends tokens
only over TLS) and writes a kubeconfig (context taly-local); `kubectl(*args)` runs .tools/bin/kubectl
against it; `client()` is the official Python client's ApiClient for it.
"""

from __future__ import annotations

import secrets
import subprocess
import time
from pathlib import Path

import yaml

from stub_kubelet import StubKubelet
from taly_ops.local import tls
from taly_ops.local.cluster.controllers import Controllers
from taly_ops.local.cluster.server import ApiServer
from taly_ops.local.cluster.store import Store

ROOT = Path(__file__).resolve().parents[2]
KUBECTL = ROOT / ".tools" / "bin" / "kubectl"


class MovableClock:
    """Real time plus whatever the test added: timestamps look real, deadlines come on demand."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


class RolloutCluster:
    def __init__(self, root: Path, never_ready: tuple[str, ...] = ()) -> None:
        self.root = root
        self.clock = MovableClock()
        self.store = Store(clock=self.clock)
        self.kubelet = StubKubelet(self.store, self.clock, never_ready=never_ready)
        self.controllers = Controllers(self.store, clock=self.clock, tick=0.05)
        self.token = secrets.token_hex(16)
        tls.write_server_certificate(root, lambda path: None)
        self.server = ApiServer(self.store, self.token, tls=(root / "server.crt", root / "server.key"))
        self.kubeconfig = root / "kubeconfig"

    def start(self) -> "RolloutCluster":
        self.kubelet.start()
        self.controllers.start()
        self.server.start()
        self.kubeconfig.write_text(yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config", "current-context": "taly-local",
            "clusters": [{"name": "taly-local", "cluster": {"server": self.server.url,
                                                            "certificate-authority": str(self.root / "server.crt")}}],
            "users": [{"name": "taly-local", "user": {"token": self.token}}],
            "contexts": [{"name": "taly-local",
                          "context": {"cluster": "taly-local", "user": "taly-local", "namespace": "default"}}]}))
        return self

    def stop(self) -> None:
        self.server.stop()
        self.controllers.stop()
        self.kubelet.stop()

    def _env(self) -> dict[str, str]:
        return {"KUBECONFIG": str(self.kubeconfig), "HOME": str(self.root), "PATH": "/usr/bin:/bin"}

    def kubectl(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run([str(KUBECTL), *args], capture_output=True, text=True, timeout=timeout,
                              env=self._env())

    def kubectl_background(self, *args: str) -> subprocess.Popen:
        return subprocess.Popen([str(KUBECTL), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=self._env())

    def client(self):
        from kubernetes import config

        return config.new_client_from_config(config_file=str(self.kubeconfig))
