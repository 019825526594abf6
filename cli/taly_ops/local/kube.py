"""The local cluster: a Kubernetes API server, its controllers and a kubelet in one process
(`python -m taly_ops.local.cluster`), running the CMS services' chart as real processes.

`start` writes the cluster's files in `<state>/cluster` (the bearer token and the TLS key, mode 600; a
CA and the API server's certificate: kubectl sends a token only over TLS; the image registry, seeded
with one healthy image per service), spawns the process on its chosen port (pods are its children, in
its process group, so stopping the group leaves nothing), then deploys: the namespace, the chart
rendered for environment `local` (workloads.py) and the services' Secrets, applied through the
official client (adapters/kube.py, create or patch), each Deployment scaled to its HPA's floor, and
waits until every Deployment is available, then until Prometheus has the series the SLO checks read.
`<state>/kubeconfig` has the context `taly-local` (https://127.0.0.1:P, the CA, the token file).

The cluster keeps its objects in memory: restarted (`taly local up` after it died), it comes back on
the same port, with the same token and registry, empty, and the chart is deployed again.
"""

from __future__ import annotations

import os
import secrets
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import yaml

from ..adapters import kube as kube_adapter
from ..adapters.prometheus import Prometheus
from ..adapters.rabbitmq import Management
from ..errors import BadInput
from . import supervisor, tls, workloads
from .context import HOST, Context

NAMESPACE = workloads.NAMESPACE
CONTEXT = workloads.PREFIX
DIR = "cluster"
KUBECONFIG = "kubeconfig"
AVAILABLE_TIMEOUT = 90.0  # every Deployment available (RabbitMQ's boot is most of it)
SERIES_TIMEOUT = 30.0     # then the SLO checks' series in Prometheus, and the queues' consumers
REQUEST_TIMEOUT = 10.0
APPLY_THREADS = 4         # services applied at once: the round trips overlap


def api_url(ports: dict[str, int]) -> str:
    return f"https://{HOST}:{ports['kube-apiserver']}"


def pod_discovery_url(ports: dict[str, int]) -> str:
    """Where Prometheus finds the pods (cluster/podsd.py): the cluster's metrics port."""
    return f"http://{HOST}:{ports['kube-state-metrics']}/sd/pods"


def cluster_dir(state_dir: Path) -> Path:
    return state_dir / DIR


def token_path(state_dir: Path) -> Path:
    return cluster_dir(state_dir) / "token"


def images_path(state_dir: Path) -> Path:
    return cluster_dir(state_dir) / "images.json"


def kubeconfig_path(state_dir: Path) -> Path:
    return state_dir / KUBECONFIG


def client(state_dir: Path) -> kube_adapter.Kube:
    """The official client on the estate's cluster, through the kubeconfig it wrote."""
    return kube_adapter.Kube(CONTEXT, kubeconfig=kubeconfig_path(state_dir))


def unavailable(kube: kube_adapter.Kube, names: set[str] | None = None) -> list[str]:
    """The Deployments (of `names`, else all) not yet available with every replica updated; missing ones too."""
    items = kube.deployments(NAMESPACE, REQUEST_TIMEOUT)
    ready = {d.metadata.name for d in items if _available(d)}
    wanted = names if names is not None else {d.metadata.name for d in items}
    return sorted(wanted - ready)


def preflight() -> list[tuple[str, str]]:
    try:
        from ..adapters import helm

        helm.helm_binary()
    except BadInput as exc:
        return [(exc.message, exc.hint or "")]
    return []


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)


def prepare(state_dir: Path, ports: dict[str, int]) -> None:
    """The token, the certificates and the kubeconfig, before anything starts (Prometheus reads the token
    file too); kept when they exist, so a restarted cluster is the same to its clients."""
    cluster_dir(state_dir).mkdir(mode=0o700, exist_ok=True)
    if not token_path(state_dir).exists():
        _write_private(token_path(state_dir), secrets.token_hex(32))
    ca, _, _ = tls.write_cluster_certificates(cluster_dir(state_dir))
    _write_private(kubeconfig_path(state_dir), yaml.safe_dump(kubeconfig(api_url(ports), ca, token_path(state_dir)),
                                                              sort_keys=False))


def kubeconfig(server: str, ca: Path, token_file: Path) -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "Config", "current-context": CONTEXT, "preferences": {},
        "clusters": [{"name": CONTEXT, "cluster": {"server": server, "certificate-authority": str(ca)}}],
        "users": [{"name": CONTEXT, "user": {"tokenFile": str(token_file)}}],
        "contexts": [{"name": CONTEXT, "context": {"cluster": CONTEXT, "user": CONTEXT, "namespace": NAMESPACE}}],
    }


def seed_images(path: Path) -> dict[str, str]:
    """One healthy image per service in the local registry (kept if already there): service -> reference."""
    from taly_platform.catalog import CATALOG

    from .cluster.images import ImageRegistry

    registry = ImageRegistry(path)
    return {svc.name: registry.push(svc.name, workloads.INITIAL_TAG, behaviour="healthy") for svc in CATALOG}


def start(ctx: Context) -> None:
    prepare(ctx.state_dir, ctx.ports)  # done by `up` already; a no-op but for the kubeconfig
    images = seed_images(images_path(ctx.state_dir))
    _launch(ctx, images)


def restart(ctx: Context, dead: set[str]) -> None:
    """Back on its port with its token and registry; its objects were in memory, so the chart is deployed again."""
    if "kube" in dead:
        _launch(ctx, seed_images(images_path(ctx.state_dir)))


def _launch(ctx: Context, images: dict[str, str]) -> None:
    d, port, log = cluster_dir(ctx.state_dir), ctx.ports["kube-apiserver"], ctx.log("kube")
    _, cert, key = tls.write_cluster_certificates(d)
    argv = [sys.executable, "-m", "taly_ops.local.cluster", "--dir", str(d), "--port", str(port),
            "--token-file", str(token_path(ctx.state_dir)), "--images", str(images_path(ctx.state_dir)),
            "--tls-cert", str(cert), "--tls-key", str(key), "--metrics-port", str(ctx.ports["kube-state-metrics"])]
    spawned = supervisor.spawn(argv, log=log, cwd=d)
    ctx.record("kube", spawned, port, log, host=HOST, url=api_url(ctx.ports), context=CONTEXT, namespace=NAMESPACE,
               kubeconfig=str(kubeconfig_path(ctx.state_dir)), metrics_port=ctx.ports["kube-state-metrics"])
    # Rendered while the cluster process boots: helm needs no cluster.
    objects = [workloads.namespace(), *workloads.secrets(ctx.state.endpoints),
               *workloads.render(ctx.state.endpoints, images)]
    kube = client(ctx.state_dir)
    ctx.wait(lambda: bool(kube.api_versions(2.0)), component="kube", what="API server answering", timeout=20,
             log=log, pid=spawned.pid, interval=0.05)
    ctx.say("kube", f"API server on {api_url(ctx.ports)}; kubeconfig {kubeconfig_path(ctx.state_dir)}")
    deploy(ctx, kube, objects, spawned.pid)


def deploy(ctx: Context, kube: kube_adapter.Kube, objects: list[dict[str, Any]], pid: int) -> None:
    """Apply the objects (each Deployment scaled to its HPA's floor once created), wait until every Deployment
    is available, then until Prometheus has the series the SLO checks read."""
    log = ctx.log("kube")
    floors = workloads.hpa_floors(objects)
    ctx.check_cancel("kube")

    def apply(group: list[dict[str, Any]]) -> None:
        for obj in group:
            kube.apply(obj, REQUEST_TIMEOUT)
            if obj["kind"] == "Deployment" and obj["metadata"]["name"] in floors:
                kube.scale(NAMESPACE, obj["metadata"]["name"], floors[obj["metadata"]["name"]], REQUEST_TIMEOUT)

    try:
        unlabelled, by_service = _groups(objects)
        apply(unlabelled)  # the namespace, before anything in it
        with ThreadPoolExecutor(max_workers=APPLY_THREADS) as pool:
            list(pool.map(apply, by_service))  # each service's objects in helm's order (its ConfigMap first)
    except (kube_adapter.ApiFailed, ValueError) as exc:
        raise supervisor.StartFailed("kube", f"the chart was not accepted: {exc}", log) from None
    ctx.say("kube", f"applied {len(objects)} objects ({len(floors)} Deployments, {sum(floors.values())} pods)")
    waiting = _Availability(ctx, kube, set(floors))
    ctx.wait(waiting.done, component="kube", what="every Deployment available", timeout=AVAILABLE_TIMEOUT,
             log=log, pid=pid, interval=0.2)
    e = ctx.state.endpoints
    try:
        supervisor.wait_until(lambda: _observed(e, floors), component="kube", what="SLO series and queue consumers",
                              timeout=SERIES_TIMEOUT, cancel=ctx.cancel, interval=0.5)
        ctx.say("kube", "Prometheus has the series of every SLO check; every work queue has its consumer")
    except supervisor.StartFailed:
        ctx.say("kube", f"warning: after {SERIES_TIMEOUT:.0f}s Prometheus still lacks some SLO series or a work queue "
                        "its consumer; `taly health --env local` shows which until they come")


def _groups(objects: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[list[dict[str, Any]]]]:
    """(objects of no service, in order; each service's objects, in order)."""
    unlabelled, by_service = [], {}
    for obj in objects:
        service = (obj["metadata"].get("labels") or {}).get("app.kubernetes.io/name")
        if service is None:
            unlabelled.append(obj)
        else:
            by_service.setdefault(service, []).append(obj)
    return unlabelled, list(by_service.values())


class _Availability:
    """The wait for every Deployment to be available, saying how many are as the count changes."""

    def __init__(self, ctx: Context, kube: kube_adapter.Kube, names: set[str]) -> None:
        self.ctx, self.kube, self.names, self.last = ctx, kube, names, -1

    def done(self) -> bool:
        missing = unavailable(self.kube, self.names)
        if len(missing) != self.last:
            self.last = len(missing)
            self.ctx.say("kube", f"{len(self.names) - len(missing)}/{len(self.names)} Deployments available"
                         + (f" (waiting: {', '.join(missing)})" if missing and len(missing) <= 4 else ""))
        return not missing


def _available(d: Any) -> bool:
    want = d.spec.replicas if d.spec.replicas is not None else 1
    s = d.status
    return ((s.observed_generation or 0) >= (d.metadata.generation or 0) and (s.updated_replicas or 0) == want
            and (s.available_replicas or 0) == want and (s.replicas or 0) == want)


# What `taly health`'s SLO checks ask (health/slo.py, the alert rules' expressions): each must have an answer.
SLO_QUERIES = (
    'sum by (service) (rate(http_requests_total{status=~"5.."}[5m])) / sum by (service) (rate(http_requests_total[5m]))',
    "histogram_quantile(0.95, sum by (service, le) (rate(http_request_duration_seconds_bucket[5m])))",
    "sum by (namespace, pod) (increase(kube_pod_container_status_restarts_total[1h]))",
)
TRAFFIC_QUERY = "sum by (service) (rate(http_requests_total[5m]))"


def _observed(endpoints: dict[str, Any], deployments: dict[str, int]) -> bool:
    """What `taly health` reads has come: every service's traffic has a rate, every SLO query answers with a
    number, and the broker counts a consumer on every work queue (its statistics lag the consumers by a second)."""
    prom = Prometheus(endpoints["prometheus"]["url"].rstrip("/"))
    if not set(deployments) <= {s["metric"].get("service") for s in prom.query(TRAFFIC_QUERY, 2.0)}:
        return False
    if not all(any(s["value"][1] != "NaN" for s in prom.query(q, 2.0)) for q in SLO_QUERIES):
        return False
    mq = endpoints["rabbitmq"]
    queues = Management(mq["management_url"], mq["user"], mq["password"]).get("queues?columns=name,consumers", 2.0)
    consumed = {q["name"] for q in queues if q.get("consumers")}
    return set(mq.get("queues") or ()) <= consumed
